"""k8s.io/apimachinery v0.30.0-beta.0 as Spiderpool v1.2.2 vendors it (vendor/modules.txt; files under
vendor/k8s.io/apimachinery/pkg/): the field errors a webhook builds, the StatusErrors it answers with, and the label
and label-selector rules, each with upstream's messages, so the models of Spiderpool's webhooks answer as it does.

- util/validation/field/errors.go:41-97 (Error, ErrorBody), :143-168 (ErrorType names), :171-272 (constructors),
  :291-306 (ToAggregate: duplicate messages dropped); util/errors/errors.go:69-95 (one error: its message; more:
  "[a, b]").
- api/errors/errors.go:159-171 (NewAlreadyExists), :208-228 (NewForbidden), :282-309 (NewInvalid).
- util/validation/validation.go:30-71 (IsQualifiedName), :155-175 (IsValidLabelValue), :187-201 (IsDNS1123Label),
  :214-223 (IsDNS1123Subdomain), :235-244 (IsDNS1035Label), :476-500 (MaxLenError, RegexError, EmptyError);
  api/validation/path/name.go:34-50 (IsValidPathSegmentName).
- apis/meta/v1/validation/validation.go:56-114 (ValidateLabelSelector, ValidateLabelSelectorRequirement,
  ValidateLabelName, ValidateLabels).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# util/validation/field/errors.go:143-168: ErrorType.String()
INVALID, NOT_SUPPORTED, FORBIDDEN, REQUIRED, INTERNAL = (
    "Invalid value",
    "Unsupported value",
    "Forbidden",
    "Required value",
    "Internal error",
)


class GoSyntax(str):
    """A value ErrorBody prints with %#v (a struct): the text as Go prints it, not quoted again."""


def go_quote(text: str) -> str:
    """fmt's %q (strconv.Quote): printable runes as they are, the others escaped."""
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v"}  # fmt: skip
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class FieldError:
    """field.Error: `value` is the BadValue after ErrorBody's dereference (None for a nil pointer)."""

    type: str
    field: str
    value: Any = None
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def body(self) -> str:
        """ErrorBody (errors.go:51-97): Required, Forbidden and Internal print no value; nil prints "null"."""
        if self.type in (REQUIRED, FORBIDDEN, INTERNAL):
            text = self.type
        elif isinstance(self.value, GoSyntax):
            text = f"{self.type}: {self.value}"
        elif isinstance(self.value, bool):
            text = f"{self.type}: {str(self.value).lower()}"
        elif isinstance(self.value, int):
            text = f"{self.type}: {self.value}"
        else:
            text = f"{self.type}: {go_quote('null' if self.value is None else str(self.value))}"
        return f"{text}: {self.detail}" if self.detail else text


def not_supported(path: str, value: Any, valid: Iterable[str]) -> FieldError:
    """field.NotSupported (errors.go:203-213)."""
    return FieldError(NOT_SUPPORTED, path, value, "supported values: " + ", ".join(go_quote(v) for v in valid))


def aggregate(errors: Iterable[FieldError]) -> str:
    """ErrorList.ToAggregate().Error(): duplicates dropped; one error bare, several in brackets."""
    messages = list(dict.fromkeys(str(e) for e in errors))
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


# util/validation/field/errors.go:120-141: the ErrorType constants a StatusCause's `reason` carries
CAUSE_TYPES = {INVALID: "FieldValueInvalid", NOT_SUPPORTED: "FieldValueNotSupported", FORBIDDEN: "FieldValueForbidden",
               REQUIRED: "FieldValueRequired", INTERNAL: "InternalError"}  # fmt: skip


@dataclass(frozen=True)
class StatusError:
    """An API answer that failed (api/errors/errors.go): its reason, HTTP code and message; `errors` for Invalid;
    `details` as the constructor fills metav1.StatusDetails."""

    reason: str
    code: int
    message: str
    errors: tuple[FieldError, ...] = field(default=())
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        """The metav1.Status the API server writes, its fields in Go's order (empty ones omitted)."""
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        body |= {"message": self.message, "reason": self.reason}
        return body | ({"details": self.details} if self.details else {}) | {"code": self.code}


def _split(qualified: str) -> dict[str, str]:
    """GroupResource/GroupKind.String() back into StatusDetails' group and kind ("kind.group", or "kind")."""
    kind, _, group = qualified.partition(".")
    return {"group": group, "kind": kind} if group else {"kind": kind}


def _named(name: str, qualified: str) -> dict[str, Any]:
    return ({"name": name} if name else {}) | _split(qualified)


def new_invalid(group_kind: str, name: str, errors: Iterable[FieldError]) -> StatusError:
    """NewInvalid (errors.go:282-309): each error a cause."""
    errs = tuple(errors)
    causes = [{"reason": CAUSE_TYPES[e.type], "message": e.body(), "field": e.field} for e in errs]
    details = _named(name, group_kind) | {"causes": causes}
    message = (
        f"{group_kind} {go_quote(name)} is invalid: {aggregate(errs)}"
        if errs
        else f"{group_kind} {go_quote(name)} is invalid"
    )
    return StatusError("Invalid", 422, message, errs, details)


def new_already_exists(group_resource: str, name: str) -> StatusError:
    """NewAlreadyExists (errors.go:159-171)."""
    message = f"{group_resource} {go_quote(name)} already exists"
    return StatusError("AlreadyExists", 409, message, details=_named(name, group_resource))


def new_not_found(group_resource: str, name: str) -> StatusError:
    """NewNotFound (errors.go:145-157 at v0.35.2)."""
    message = f"{group_resource} {go_quote(name)} not found"
    return StatusError("NotFound", 404, message, details=_named(name, group_resource))


def new_forbidden(group_resource: str, name: str, err: str) -> StatusError:
    """NewForbidden (errors.go:208-228): an empty GroupResource says only "forbidden"."""
    details = _named(name, group_resource) if group_resource else {}
    if not group_resource:
        return StatusError("Forbidden", 403, f"forbidden: {err}", details=details)
    if not name:
        return StatusError("Forbidden", 403, f"{group_resource} is forbidden: {err}", details=details)
    return StatusError("Forbidden", 403, f"{group_resource} {go_quote(name)} is forbidden: {err}", details=details)


# errors.go at v0.35.2: the answers the lab's API server gives besides a webhook's
def new_unauthorized(reason: str) -> StatusError:
    """NewUnauthorized (:195-206): "not authorized" when the reason is empty."""
    return StatusError("Unauthorized", 401, reason or "not authorized")


def new_resource_expired(message: str) -> StatusError:
    """NewResourceExpired (:274-281): 410 with reason Expired (a watch or list from a compacted resourceVersion)."""
    return StatusError("Expired", 410, message)


def new_bad_request(reason: str) -> StatusError:
    """NewBadRequest (:315-324)."""
    return StatusError("BadRequest", 400, reason)


def new_method_not_supported(group_resource: str, action: str) -> StatusError:
    """NewMethodNotSupported (:350-363)."""
    message = f"{action} is not supported on resources of kind {go_quote(group_resource)}"
    return StatusError("MethodNotAllowed", 405, message, details=_split(group_resource))


def new_internal_error(err: str) -> StatusError:
    """NewInternalError (:387-399)."""
    return StatusError("InternalError", 500, f"Internal error occurred: {err}", details={"causes": [{"message": err}]})


def new_too_many_requests(message: str, retry_after_seconds: int) -> StatusError:
    """NewTooManyRequests (:327-338)."""
    return StatusError("TooManyRequests", 429, message, details={"retryAfterSeconds": retry_after_seconds})


def new_service_unavailable(reason: str) -> StatusError:
    """NewServiceUnavailable (:340-348)."""
    return StatusError("ServiceUnavailable", 503, reason)


# util/validation/validation.go: the label and name formats and their messages
_QNAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE = f"({_QNAME})?"
_LABEL_VALUE_MSG = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"  # noqa: E501
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = f"{_DNS1123_LABEL}(\\.{_DNS1123_LABEL})*"
_DNS1123_LABEL_MSG = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"  # noqa: E501
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"  # noqa: E501
_DNS1123_SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"  # noqa: E501


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """RegexError (validation.go:481-494)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    return f"{msg} (e.g. " + " or ".join(f"'{e}', " for e in examples) + f"regex used for validation is '{fmt}')"


def dns1123_subdomain_errors(value: str) -> list[str]:
    """IsDNS1123Subdomain (validation.go:214-223)."""
    errors = ["must be no more than 253 characters"] if len(value) > 253 else []
    if not re.fullmatch(_DNS1123_SUBDOMAIN, value):
        errors.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN, "example.com"))
    return errors


def dns1123_label_errors(value: str) -> list[str]:
    """IsDNS1123Label (validation.go:187-201): a subdomain that is no label has dots, and says so."""
    errors = ["must be no more than 63 characters"] if len(value) > 63 else []
    if re.fullmatch(_DNS1123_LABEL, value):
        return errors
    if re.fullmatch(_DNS1123_SUBDOMAIN, value):
        return [*errors, "must not contain dots"]
    return [*errors, _regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL, "my-name", "123-abc")]


def dns1035_label_errors(value: str) -> list[str]:
    """IsDNS1035Label (validation.go:235-244): a letter first, as a Service's name."""
    errors = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not re.fullmatch(_DNS1035_LABEL, value):
        errors.append(_regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL, "my-name", "abc-123"))
    return errors


def path_segment_name_errors(value: str) -> list[str]:
    """IsValidPathSegmentName (api/validation/path/name.go:34-50): what RBAC objects' names must pass."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def qualified_name_errors(value: str) -> list[str]:
    """IsQualifiedName (validation.go:42-71): an optional DNS-subdomain prefix and '/', then a name of 63 at most."""
    parts = value.split("/")
    errors: list[str] = []
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if len(parts) == 2:
        if not parts[0]:
            errors.append("prefix part must be non-empty")
        else:
            errors += ["prefix part " + m for m in dns1123_subdomain_errors(parts[0])]
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not re.fullmatch(_QNAME, name):
        errors.append("name part " + _regex_error(_QNAME_MSG, _QNAME, "MyName", "my.name", "123-abc"))
    return errors


def label_value_errors(value: str) -> list[str]:
    """IsValidLabelValue (validation.go:166-175)."""
    errors = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not re.fullmatch(_LABEL_VALUE, value):
        errors.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE, "MyValue", "my_value", "12345"))
    return errors


def label_selector_errors(selector: dict[str, Any], path: str) -> list[FieldError]:
    """ValidateLabelSelector with AllowInvalidLabelValueInSelector false (meta/v1/validation.go:56-114). Go walks
    matchLabels in map order, which is random: the model walks it sorted."""
    errors: list[FieldError] = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        errors += [FieldError(INVALID, f"{path}.matchLabels", key, m) for m in qualified_name_errors(key)]
        errors += [FieldError(INVALID, f"{path}.matchLabels", value, m) for m in label_value_errors(value)]
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        where, operator, values = f"{path}.matchExpressions[{i}]", expr.get("operator", ""), expr.get("values") or []
        if operator in ("In", "NotIn") and not values:
            errors.append(
                FieldError(REQUIRED, f"{where}.values", "", "must be specified when `operator` is 'In' or 'NotIn'")
            )
        elif operator in ("Exists", "DoesNotExist") and values:
            errors.append(
                FieldError(
                    FORBIDDEN,
                    f"{where}.values",
                    "",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
        elif operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            errors.append(FieldError(INVALID, f"{where}.operator", operator, "not a valid selector operator"))
        key = expr.get("key", "")
        errors += [FieldError(INVALID, f"{where}.key", key, m) for m in qualified_name_errors(key)]
        for j, value in enumerate(values):
            errors += [FieldError(INVALID, f"{where}.values[{j}]", value, m) for m in label_value_errors(value)]
    return errors


def label_selector_go_syntax(selector: dict[str, Any]) -> GoSyntax:
    """A metav1.LabelSelector as %#v prints it (a field.Invalid's value after ErrorBody's dereference): map keys
    sorted, a field absent from the JSON a nil."""

    def strings(values: list[str] | None) -> str:
        return "[]string(nil)" if values is None else "[]string{" + ", ".join(go_quote(v) for v in values) + "}"

    labels = selector.get("matchLabels")
    shown_labels = (
        "map[string]string(nil)"
        if labels is None
        else "map[string]string{" + ", ".join(f"{go_quote(k)}:{go_quote(v)}" for k, v in sorted(labels.items())) + "}"
    )
    exprs = selector.get("matchExpressions")
    kind = "v1.LabelSelectorRequirement"
    shown_exprs = (
        f"[]{kind}(nil)"
        if exprs is None
        else f"[]{kind}{{"
        + ", ".join(
            f"{kind}{{Key:{go_quote(e.get('key', ''))}, Operator:{go_quote(e.get('operator', ''))}, "
            f"Values:{strings(e.get('values'))}}}"
            for e in exprs
        )
        + "}"
    )
    return GoSyntax(f"v1.LabelSelector{{MatchLabels:{shown_labels}, MatchExpressions:{shown_exprs}}}")
