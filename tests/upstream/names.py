"""Which of apimachinery's name rules (tests/upstream/apimachinery.py) the API server applies to a kind's name: what
a name the chart derives from a release name must pass for the object to be created at all.

ValidateObjectMeta's name function per kind (kubernetes v1.30):
- pkg/apis/core/validation/validation.go: ValidateServiceName = NameIsDNS1035Label (a letter first, no dot),
  ValidateNamespaceName = NameIsDNSLabel (no dot); Pods, ConfigMaps, ServiceAccounts and the other core kinds
  NameIsDNSSubdomain, as apps', batch's and networking's kinds;
- pkg/apis/rbac/validation/validation.go: ValidateRBACName = path.IsValidPathSegmentName (Role, ClusterRole and
  their bindings);
- apiextensions-apiserver pkg/registry/customresource/validator.go: a custom resource's name, NameIsDNSSubdomain.
Every label value: ValidateLabels (apimachinery pkg/apis/meta/v1/validation/validation.go:97-114).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tests.upstream import apimachinery as am

RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def name_rule(kind: str) -> Callable[[str], list[str]]:
    if kind == "Service":
        return am.dns1035_label_errors
    if kind == "Namespace":
        return am.dns1123_label_errors
    return am.path_segment_name_errors if kind in RBAC_KINDS else am.dns1123_subdomain_errors


def invalid(obj: dict[str, Any]) -> Iterator[str]:
    """The API server's refusals of `obj`'s name and label values, worded as `kubectl` shows them."""
    meta, kind = obj["metadata"], obj["kind"]
    what = f'{kind} "{meta["name"]}" is invalid'
    for error in name_rule(kind)(meta["name"]):
        yield f'{what}: metadata.name: Invalid value: "{meta["name"]}": {error}'
    for value in (meta.get("labels") or {}).values():
        for error in am.label_value_errors(str(value)):
            yield f'{what}: metadata.labels: Invalid value: "{value}": {error}'
