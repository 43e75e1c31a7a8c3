"""Label and field selectors as the API server parses and matches them, with upstream's error messages.

From k8s.io/apimachinery at v0.35.2 (b559095e):
- pkg/labels/selector.go:185-225 (NewRequirement: the checks of a requirement), :247-294 (Requirement.Matches),
  :493-627 (the lexer: tokens, special symbols, whitespace), :651-874 (the parser), :919-941 (parse sorts the
  requirements by key; validateLabelKey, validateLabelValue).
- pkg/fields/selector.go:280-348 (UnescapeValue and its errors), :380-402 (splitTerms on unescaped commas),
  :404-461 (splitTerm tries `!=`, `==`, `=` at each position; parseSelector).
Their tests' cases are data in tests/fixtures/upstream/selectors-test.json (tests/charts/test_upstream_models.py).

Which fields a kind may be selected by, from kubernetes/kubernetes at 0158de93: pkg/apis/core/v1/conversion.go
(addConversionFuncs: Pod, Node; AddFieldLabelConversionsForEvent, ...Namespace, ...Service) and, for every other kind,
apimachinery's runtime.DefaultMetaV1FieldSelectorConversion (pkg/runtime/conversion.go: metadata.name and
metadata.namespace); an unsupported label is the error "field label not supported: LABEL". A field's value is its
string form (a bool as strconv.FormatBool, absent as "": pkg/registry/core/pod/strategy.go PodToSelectableFields).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.upstream.apimachinery import INVALID, FieldError, GoSyntax, go_quote, label_value_errors
from tests.upstream.apimachinery import qualified_name_errors as label_key_errors


class SelectorError(ValueError):
    """What the parser returns as an error: the API server answers it as a 400 BadRequest with this message."""


# -- label selectors ----------------------------------------------------------------------------------------------

BINARY_OPERATORS = ["in", "notin", "=", "==", "!=", "gt", "lt"]  # selection.go's binaryOperators, as printed
_TOKENS = {")": "ClosedPar", ",": "Comma", "!": "DoesNotExist", "==": "DoubleEquals", "=": "Equals", ">": "GreaterThan",
           "in": "In", "<": "LessThan", "!=": "NotEquals", "notin": "NotIn", "(": "OpenPar"}  # fmt: skip
_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "in", "notin", "=", "==", "!=", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Requirement.Matches: NotIn and != match an object without the key; Gt and Lt compare integers."""
        present, value = self.key in labels, labels.get(self.key, "")
        if self.operator in {"in", "=", "=="}:
            return present and value in self.values
        if self.operator in {"notin", "!="}:
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if not present or len(self.values) != 1:
            return False
        try:
            have, want = _go_int64(value), _go_int64(self.values[0])
        except ValueError:
            return False
        return have > want if self.operator == "gt" else have < want


def _go_int64(text: str) -> int:
    """strconv.ParseInt(text, 10, 64): an optional sign and decimal digits only."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(text)
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(text)
    return value


def _requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """NewRequirement's checks; the errors aggregated as field.ErrorList.ToAggregate prints them."""
    errors: list[FieldError] = []
    if problems := label_key_errors(key):
        errors.append(FieldError(INVALID, "key", key, "; ".join(problems)))
    shown = "[]string{" + ", ".join(go_quote(v) for v in values) + "}"
    if operator in {"in", "notin"} and not values:
        errors.append(
            FieldError(INVALID, "values", GoSyntax(shown), "for 'in', 'notin' operators, values set can't be empty")
        )
    if operator in {"=", "==", "!="} and len(values) != 1:
        errors.append(
            FieldError(INVALID, "values", GoSyntax(shown), "exact-match compatibility requires one single value")
        )
    if operator in {"gt", "lt"}:
        if len(values) != 1:
            detail = "for 'Gt', 'Lt' operators, exactly one value is required"
            errors.append(FieldError(INVALID, "values", GoSyntax(shown), detail))
        for i, value in enumerate(values):
            try:
                _go_int64(value)
            except ValueError:
                detail = "for 'Gt', 'Lt' operators, the value must be an integer"
                errors.append(FieldError(INVALID, f"values[{i}]", value, detail))
    for i, value in enumerate(values):
        if problems := label_value_errors(value):
            errors.append(FieldError(INVALID, f"values[{i}][{key}]", value, "; ".join(problems)))
    if errors:
        messages = list(dict.fromkeys(str(e) for e in errors))
        raise SelectorError(messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]")
    return Requirement(key, operator, tuple(values))


def _lex(text: str) -> list[tuple[str, str]]:
    """The lexer's items: (token, literal), ending with ("End", "")."""
    items, pos = [], 0
    while True:
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= len(text):
            items.append(("End", ""))
            return items
        if text[pos] in _SPECIAL:  # scanSpecialSymbol: the longest run of symbols that is a token
            buffer, last = "", ("", "")
            while pos < len(text) and text[pos] in _SPECIAL:
                buffer += text[pos]
                if buffer in _TOKENS:
                    last = (_TOKENS[buffer], buffer)
                    pos += 1
                elif last[0]:
                    break
                else:
                    pos += 1
            items.append(last if last[0] else ("Error", f"error expected: keyword found '{buffer}'"))
            continue
        start = pos  # scanIDOrKeyword
        while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        items.append((_TOKENS[word], word) if word in _TOKENS else ("Identifier", word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.items, self.position = _lex(text), 0

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[self.position]
        return ("Identifier", lit) if values and tok in {"In", "NotIn"} else (tok, lit)

    def consume(self, values: bool = True) -> tuple[str, str]:
        token = self.lookahead(values)
        self.position += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok == "End":
                return requirements
            if tok not in {"Identifier", "DoesNotExist"}:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            tok, lit = self.consume()
            if tok == "End":
                return requirements
            if tok != "Comma":
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.lookahead()
            if tok not in {"Identifier", "DoesNotExist"}:
                raise SelectorError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        operator = ""
        tok, key = self.consume()
        if tok == "DoesNotExist":
            operator = "!"
            tok, key = self.consume()
        if tok != "Identifier":
            raise SelectorError(f"found '{key}', expected: identifier")
        if problems := label_key_errors(key):
            raise SelectorError(str(FieldError(INVALID, "", key, "; ".join(problems))))  # p.path is nil: ": Invalid"
        if self.lookahead()[0] in {"End", "Comma"} and operator != "!":
            operator = "exists"
        if operator:
            return _requirement(key, operator, [])
        tok, lit = self.consume(values=False)
        operator = {"In": "in", "Equals": "=", "DoubleEquals": "==", "GreaterThan": "gt", "LessThan": "lt",
                    "NotIn": "notin", "NotEquals": "!="}.get(tok, "")  # fmt: skip
        if not operator:
            raise SelectorError(f"found '{lit}', expected: {', '.join(BINARY_OPERATORS)}")
        values = self.values() if operator in {"in", "notin"} else self.exact_value()
        return _requirement(key, operator, sorted(values))

    def values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != "OpenPar":
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok == "ClosedPar":
            self.consume()
            return {""}
        if tok not in {"Identifier", "Comma"}:
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        found = self.identifiers()
        if self.consume()[0] != "ClosedPar":
            raise SelectorError(f"found '{lit}', expected: ')'")
        return found

    def identifiers(self) -> set[str]:
        found: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == "Identifier":
                found.add(lit)
                after, lit2 = self.lookahead()
                if after == "ClosedPar":
                    return found
                if after != "Comma":
                    raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            elif tok == "Comma":
                if not found:
                    found.add("")
                after, _ = self.lookahead()
                if after == "ClosedPar":
                    found.add("")
                    return found
                if after == "Comma":
                    found.add("")
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.lookahead()[0] in {"End", "Comma"}:
            return {""}
        tok, lit = self.consume()
        if tok == "Identifier":
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_labels(selector: str) -> list[Requirement]:
    """labels.Parse: the requirements sorted by key, or SelectorError with the parser's message."""
    return sorted(_Parser(selector).parse(), key=lambda r: r.key)


def labels_match(requirements: list[Requirement], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)


# -- field selectors ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    equal: bool  # hasTerm (= and ==) or notHasTerm (!=)

    def matches(self, fields: Mapping[str, str]) -> bool:
        """hasTerm/notHasTerm.Matches: an absent field reads as ""."""
        return (fields.get(self.field, "") == self.value) == self.equal


def _unescape(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out, in_slash = [], False
    for char in value:
        if in_slash:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            in_slash = False
        elif char == "\\":
            in_slash = True
        elif char in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(char)}")
        else:
            out.append(char)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(selector: str) -> list[str]:
    terms, start, in_slash = [], 0, False
    for i, char in enumerate(selector):
        if in_slash:
            in_slash = False
        elif char == "\\":
            in_slash = True
        elif char == ",":
            terms.append(selector[start:i])
            start = i + 1
    return [*terms, selector[start:]]


def parse_fields(selector: str) -> list[FieldTerm]:
    """fields.ParseSelector: terms sorted, each `field!=v`, `field==v` or `field=v` with v unescaped."""
    terms = []
    for part in sorted(_split_terms(selector)) if selector else []:
        if not part:
            continue
        for i in range(len(part)):
            op = next((o for o in ("!=", "==", "=") if part.startswith(o, i)), "")
            if op:
                terms.append(FieldTerm(part[:i], _unescape(part[i + len(op) :]), op != "!="))
                break
        else:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{part}'")
    return terms


def _value(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, bool):
        return str(node).lower()
    if isinstance(node, list):  # status.podIPs: the addresses, comma-separated (PodToSelectableFields)
        return ",".join(str(i.get("ip", "")) if isinstance(i, Mapping) else str(i) for i in node)
    return "" if node is None else str(node)


META_FIELDS = ("metadata.name", "metadata.namespace")
SELECTABLE: dict[str, tuple[str, ...]] = {
    "Pod": (*META_FIELDS, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"),
    "Node": ("metadata.name", "spec.unschedulable"),
    "Event": (*META_FIELDS, "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "Namespace": ("status.phase", "metadata.name"),
    "Service": (*META_FIELDS, "spec.clusterIP", "spec.type"),
}  # fmt: skip
RENAMED = {("Pod", "spec.host"): "spec.nodeName"}  # backwards compatibility with old v1 clients


def field_selector(kind: str, selector: str) -> Callable[[Mapping[str, Any]], bool]:
    """The predicate of `fieldSelector` on objects of `kind`, its labels converted as the kind's conversion func
    does; SelectorError for a malformed selector or a label the kind does not support."""
    terms = []
    for term in parse_fields(selector):
        label = RENAMED.get((kind, term.field), term.field)
        if label not in SELECTABLE.get(kind, META_FIELDS):
            raise SelectorError(f"field label not supported: {term.field}")
        terms.append(FieldTerm(label, term.value, term.equal))

    def matches(obj: Mapping[str, Any]) -> bool:
        fields = {t.field: _source_value(obj, t.field) for t in terms}
        return all(t.matches(fields) for t in terms)

    return matches


def _source_value(obj: Mapping[str, Any], label: str) -> str:
    if label == "status.podIP":  # the first of status.podIPs (PodToSelectableFields)
        return _value(obj, "status.podIP")
    if label == "spec.hostNetwork":
        return _value(obj, label) or "false"
    if label == "spec.unschedulable":
        return _value(obj, label) or "false"
    return _value(obj, label)
