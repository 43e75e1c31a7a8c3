"""The three patch formats kube-apiserver takes (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go
applyPatcher, jsonPatcher, smpPatcher), on objects as JSON data:

- JSON merge patch, RFC 7386 section 2 (MergePatch's pseudocode: a null deletes, an object merges, anything else
  replaces), as evanphx/json-patch MergePatch applies it.
- JSON patch, RFC 6902 section 4 (add, remove, replace, move, copy, test; JSON pointers of RFC 6901 with ~0 and ~1,
  "-" appending), as evanphx/json-patch applies it; an operation that fails fails the whole patch.
- Strategic merge patch (apimachinery pkg/util/strategicpatch/patch.go StrategicMergeMapPatch, mergeMap and
  mergeSlice): maps merge as in a merge patch; a list whose schema has x-kubernetes-patch-strategy `merge` merges
  by its x-kubernetes-patch-merge-key (maps) or as a set (primitives), any other list is replaced; the directives
  `$patch` (replace, delete, merge: in a map and in a list item), `$retainKeys`, `$deleteFromPrimitiveList/F` and
  `$setElementOrder/F` (which kubectl's client-side apply sends with every list it patches) as patch.go handles
  them. The schema is the kind's OpenAPI schema (patchmeta from its extensions, openapi.go).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Schema = dict[str, Any]
Resolve = Callable[[Schema], Schema]  # follows a schema's $ref


class PatchError(Exception):
    """A patch that cannot be applied: the API server answers 400 (or 422 for a failed `test`)."""


# -- RFC 7386 -------------------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any, schema: tuple[Schema, Resolve] | None = None) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# -- RFC 6902 -------------------------------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"doc is missing path: {'/' + '/'.join(parts)}")
    return node


def _index(node: list[Any], part: str, adding: bool) -> int:
    if adding and part == "-":
        return len(node)
    if not part.isdigit() or (len(part) > 1 and part.startswith("0")):
        raise PatchError(f"invalid array index: {part}")
    index = int(part)
    if index > len(node) or (not adding and index == len(node)):
        raise PatchError(f"array index out of bounds: {index}")
    return index


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    node = _parent(doc, parts)
    if isinstance(node, dict) and parts[-1] in node:
        return node[parts[-1]]
    if isinstance(node, list):
        return node[_index(node, parts[-1], False)]
    raise PatchError(f"doc is missing path: {'/' + '/'.join(parts)}")


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    node = _parent(doc, parts)
    if isinstance(node, dict):
        node[parts[-1]] = value
    elif isinstance(node, list):
        node.insert(_index(node, parts[-1], True), value)
    else:
        raise PatchError(f"doc is missing path: {'/' + '/'.join(parts)}")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    node = _parent(doc, parts)
    _get(doc, parts)
    if isinstance(node, dict):
        del node[parts[-1]]
    else:
        del node[_index(node, parts[-1], False)]
    return doc


def json_patch(target: Any, patch: Any, schema: tuple[Schema, Resolve] | None = None) -> Any:
    if not isinstance(patch, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in patch:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, parts)
        elif kind == "replace":
            _get(doc, parts)
            doc = _add(_remove(doc, parts), parts, copy.deepcopy(op.get("value"))) if parts else op.get("value")
        elif kind in {"move", "copy"}:
            source = _pointer(op.get("from", ""))
            value = copy.deepcopy(_get(doc, source))
            if kind == "move":
                doc = _remove(doc, source)
            doc = _add(doc, parts, value)
        elif kind == "test":
            if _get(doc, parts) != op.get("value"):
                raise PatchError(f"testing value {op.get('path')} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


# -- strategic merge patch ------------------------------------------------------------------------------------------

DIRECTIVE, RETAIN_KEYS = "$patch", "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER = "$deleteFromPrimitiveList", "$setElementOrder"


def _field(schema: Schema | None, resolve: Resolve, key: str) -> Schema | None:
    if schema is None:
        return None
    schema = resolve(schema)
    props = schema.get("properties") or {}
    if key in props:
        return resolve(props[key])
    extra = schema.get("additionalProperties")
    return resolve(extra) if isinstance(extra, dict) else None


def strategic_merge_patch(target: dict[str, Any], patch: Any, schema: tuple[Schema, Resolve] | None) -> Any:
    if schema is None:  # a custom resource: patch.go refuses it (no Go struct, no patch metadata)
        raise PatchError("strategic merge patch format is not supported")
    if not isinstance(patch, dict):
        raise PatchError("unable to find api field in struct Unknown for the json field")
    root, resolve = schema
    return _merge_map(copy.deepcopy(target), patch, root, resolve)


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema | None, resolve: Resolve) -> Any:
    patch = dict(patch)
    directive = patch.pop(DIRECTIVE, None)
    if directive == "replace":
        return {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive} in map: {patch}")
    retain = patch.pop(RETAIN_KEYS, None)
    if retain is not None:
        original = {k: v for k, v in original.items() if k in retain}
    orders = {k.split("/", 1)[1]: patch.pop(k) for k in list(patch) if k.startswith(SET_ELEMENT_ORDER + "/")}
    for key in [k for k in patch if k.startswith(DELETE_FROM_PRIMITIVE_LIST + "/")]:
        name, doomed = key.split("/", 1)[1], patch.pop(key)
        if isinstance(original.get(name), list):
            original[name] = [v for v in original[name] if v not in doomed]
    for key, value in patch.items():
        sub = _field(schema, resolve, key)
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict) and isinstance(original.get(key), dict):
            original[key] = _merge_map(original[key], value, sub, resolve)
        elif isinstance(value, list) and isinstance(original.get(key), list):
            original[key] = _merge_list(original[key], value, sub, resolve)
        elif isinstance(value, dict):
            original[key] = _merge_map({}, value, sub, resolve)
        elif isinstance(value, list):
            original[key] = _merge_list([], value, sub, resolve)
        else:
            original[key] = copy.deepcopy(value)
    for name, order in orders.items():
        if isinstance(original.get(name), list):
            original[name] = _ordered(original[name], order, _merge_key(_field(schema, resolve, name)))
    return original


def _merge_key(schema: Schema | None) -> str | None:
    if schema is None or "merge" not in str(schema.get("x-kubernetes-patch-strategy", "")).split(","):
        return None
    return str(schema.get("x-kubernetes-patch-merge-key", ""))


def _merge_list(original: list[Any], patch: list[Any], schema: Schema | None, resolve: Resolve) -> list[Any]:
    key = _merge_key(schema)
    items = resolve(schema["items"]) if schema and isinstance(schema.get("items"), dict) else None
    if key is None:
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and DIRECTIVE in v)]
    if any(isinstance(v, dict) and v.get(DIRECTIVE) == "replace" for v in patch):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and DIRECTIVE in v)]
    if not key:  # a list of primitives merged as a set
        return [*original, *(copy.deepcopy(v) for v in patch if v not in original)]
    out = [copy.deepcopy(v) for v in original]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        at = next((i for i, v in enumerate(out) if isinstance(v, dict) and v.get(key) == item[key]), None)
        if item.get(DIRECTIVE) == "delete":
            if at is not None:
                out.pop(at)
        elif at is None:
            out.append(_merge_map({}, item, items, resolve))
        else:
            out[at] = _merge_map(out[at], item, items, resolve)
    return out


def _ordered(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """$setElementOrder: the listed elements in its order, the rest after them as they were."""
    ident = (lambda v: v.get(key) if isinstance(v, dict) else v) if key else (lambda v: v)
    wanted = [ident(o) if isinstance(o, dict) else o for o in order]
    first = sorted((v for v in items if ident(v) in wanted), key=lambda v: wanted.index(ident(v)))
    return first + [v for v in items if ident(v) not in wanted]
