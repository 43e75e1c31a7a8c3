"""The one rewrite that lets hashicorp/aws 5.x (the only provider on these machines) judge a stack that pins 6.x.

Only what 5.x cannot express is rewritten, each entry of `REWRITES` after both providers' documentation. Every other
argument or block the stack uses is looked up in the 5.x schema (`terraform providers schema -json`); one that 5.x
lacks but 6.x has (the schema of the pinned 6.x provider, as generated into `cdktn_provider_aws`) is a 6.x-only
construct without a rewrite: `downgrade` raises, naming it. One that neither has is left for Terraform to reject
with its own message.
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import typing
from collections.abc import Callable
from typing import Any

#: Resource keys that are Terraform meta-arguments, not provider schema (Terraform docs, "Meta-Arguments"), plus
#: cdktn's metadata comment.
META_ARGUMENTS = frozenset(
    {"//", "count", "for_each", "depends_on", "lifecycle", "provider", "provisioner", "connection"}
)

Rewrite = Callable[[Any], tuple[str, Any]]


def _primary_network_interface(value: Any) -> tuple[str, Any]:
    """6.x `primary_network_interface { network_interface_id }` -> 5.x `network_interface { device_index = 0 }`.

    6.x: website/docs/r/instance.html.markdown, "primary_network_interface": the interface attached at launch as
    device index 0, with `network_interface_id` its only argument. 5.x (v5.100.0, same file): `network_interface`
    with `device_index` (0 is the primary) and `network_interface_id`, both required; `delete_on_termination`
    defaults to false, as 6.x leaves an interface created outside the instance in place.
    """
    block = value[0] if isinstance(value, list) else value
    if set(block) != {"network_interface_id"}:
        raise UnsupportedConstruct(
            f"primary_network_interface with {sorted(block)}: only network_interface_id is mapped"
        )
    return "network_interface", [{"device_index": 0, "network_interface_id": block["network_interface_id"]}]


#: (resource type, argument or block) -> the rewrite into 5.x: (new key, new value).
REWRITES: dict[tuple[str, str], Rewrite] = {
    ("aws_instance", "primary_network_interface"): _primary_network_interface,
}


class UnsupportedConstruct(AssertionError):
    """The stack uses a 6.x-only construct that `REWRITES` does not translate."""


def downgrade(stack: dict[str, Any], schema5: dict[str, Any], version5: str) -> dict[str, Any]:
    """A copy of `stack` that hashicorp/aws `version5` accepts: the version pin and `REWRITES`, nothing else."""
    out = copy.deepcopy(stack)
    out["terraform"]["required_providers"]["aws"]["version"] = version5
    _check_block(("provider", "aws"), out["provider"]["aws"][0], schema5["provider"]["block"])
    for kind, schemas in (("resource", schema5["resource_schemas"]), ("data", schema5["data_source_schemas"])):
        for rtype, instances in out.get(kind, {}).items():
            if rtype not in schemas:
                if _schema6(kind, rtype) is not None:
                    raise UnsupportedConstruct(f"{kind} type {rtype} is 6.x-only: add a rewrite to REWRITES")
                continue  # in neither provider: Terraform rejects it with its own message
            for name, body in instances.items():
                for key in [k for k in body if (rtype, k) in REWRITES]:
                    new_key, new_value = REWRITES[(rtype, key)](body.pop(key))
                    if new_key in body:
                        raise UnsupportedConstruct(f"{rtype}.{name}: both {key} and {new_key}")
                    body[new_key] = new_value
                _check_block((kind, rtype), body, schemas[rtype]["block"], name)
    return out


def _check_block(path: tuple[str, ...], body: dict[str, Any], block5: dict[str, Any], name: str = "") -> None:
    """Raise on a key of `body` that 5.x lacks and 6.x has; `path` is (kind, type, nested block names...)."""
    nested5 = block5.get("block_types", {})
    for key, value in body.items():
        if key in META_ARGUMENTS:
            continue
        if key in nested5:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    _check_block((*path, key), item, nested5[key]["block"], name)
        elif key not in block5.get("attributes", {}) and key in (_schema6_at(path) or {}):
            where = ".".join((path[1], name, *path[2:], key)).replace("..", ".")
            raise UnsupportedConstruct(f"{where} is 6.x-only (not in the 5.x provider's schema): add it to REWRITES")


def _schema6_at(path: tuple[str, ...]) -> Schema6 | None:
    fields = _schema6(path[0], path[1])
    for key in path[2:]:
        fields = (fields or {}).get(key)
    return fields


# The 6.x schema as the generated bindings of the pinned provider know it: argument name -> nested block or None.
Schema6 = dict[str, "Schema6 | None"]


@functools.cache
def _schema6(kind: str, rtype: str) -> Schema6 | None:
    """Arguments and blocks of `rtype` in the 6.x provider, from cdktn_provider_aws's `<Type>Config` class."""
    if kind == "provider":
        module_name, class_name = "provider", "AwsProviderConfig"
    else:
        stem = rtype.removeprefix("aws_")
        module_name = stem if kind == "resource" else f"data_aws_{stem}"
        class_name = "".join(part.capitalize() for part in module_name.split("_")) + "Config"
    try:
        module = importlib.import_module(f"cdktn_provider_aws.{module_name}")
    except ModuleNotFoundError:
        return None
    config = getattr(module, class_name, None)
    return None if config is None else _fields(config)


def _fields(struct: type) -> Schema6:
    init = vars(struct)["__init__"]  # jsii generates one per struct, its keyword arguments the struct's fields
    hints = typing.get_type_hints(init)
    fields: Schema6 = {}
    for name in inspect.signature(init).parameters:
        if name == "self":
            continue
        nested = [t for t in _leaf_types(hints.get(name)) if inspect.isclass(t) and t.__module__ == struct.__module__]
        fields[name] = _fields(nested[0]) if nested else None
    return fields


def _leaf_types(hint: Any) -> list[Any]:
    args = typing.get_args(hint)
    return [leaf for arg in args for leaf in _leaf_types(arg)] if args else [hint]
