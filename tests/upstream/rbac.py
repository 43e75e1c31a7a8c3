"""Kubernetes' RBAC authorizer, and the request attributes the API server derives from a request, for checking that
a component's calls are exactly what its roles grant.

From kubernetes/kubernetes:
- staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go (NewRequestInfo, at 01bb682e): the verb from the
  method (POST create, GET/HEAD get, PUT update, PATCH patch, DELETE delete); a GET without a name is `list`, or
  `watch` when the `watch` query value is anything but false or 0; a DELETE without a name `deletecollection`;
  /namespaces/NS/... sets the namespace, and /api/v1/namespaces/NS (the namespace itself) sets it to NS too; the
  parts after it are resource, name, subresource.
- plugin/pkg/auth/authorizer/rbac/rbac.go (RuleAllows) with pkg/apis/rbac/v1/evaluation_helpers.go (at 03bf11a3:
  VerbMatches, APIGroupMatches, ResourceMatches with `resource/subresource` and `*/subresource`, ResourceNameMatches,
  NonResourceURLMatches with a trailing `*`).
- pkg/registry/rbac/validation/rule.go (VisitRulesFor): every ClusterRoleBinding's rules apply in every namespace and
  to cluster-scoped requests; a RoleBinding's (to a Role of its namespace or to a ClusterRole) only in its namespace.
  A ServiceAccount subject matches the user system:serviceaccount:NS:NAME (appliesToUser).
- staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go (PatchResource): a patch that creates its object (a
  server-side apply of a new object) is also authorized as `create`.
- plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go: system:discovery gives every authenticated user GET on
  /api, /apis (and below), /openapi (and below), /version, /healthz, /livez, /readyz (BOOTSTRAP_DISCOVERY).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

# bootstrappolicy/policy.go: the system:discovery ClusterRole, bound to the group system:authenticated
BOOTSTRAP_DISCOVERY: list[dict[str, Any]] = [
    {"kind": "ClusterRole", "metadata": {"name": "system:discovery"}, "rules": [{"verbs": ["get"], "nonResourceURLs": [
        "/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*", "/api", "/api/*", "/apis",
        "/apis/*"]}]},
    {"kind": "ClusterRoleBinding", "metadata": {"name": "system:discovery"},
     "roleRef": {"kind": "ClusterRole", "name": "system:discovery"},
     "subjects": [{"kind": "Group", "name": "system:authenticated"}]},
]  # fmt: skip
NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class Request:
    """An API request as the authorizer sees it (authorizer.Attributes)."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # a non-resource request's path (resource is then empty)

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


def request_info(method: str, url: str) -> Request:
    """requestinfo.go's NewRequestInfo for the API prefixes api (groupless) and apis."""
    split = urlsplit(url)
    parts = [p for p in split.path.strip("/").split("/") if p]
    verb = method.lower()
    if len(parts) < 3 or parts[0] not in {"api", "apis"} or (parts[0] == "apis" and len(parts) < 4):
        return Request(verb=verb, path=split.path)
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    verb = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, ""
    )
    if rest[0] == "watch":  # the deprecated /watch/ prefix
        verb, rest = "watch", rest[1:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource, name, subresource = [*rest, "", "", ""][:3]
    if not name and verb == "get":
        watch = parse_qs(split.query).get("watch", [])
        verb = "watch" if watch and watch[0].lower() not in {"false", "0"} else "list"
    if not name and verb == "delete":
        verb = "deletecollection"
    return Request(verb, group, resource, subresource, namespace, name)


def _rule_allows(request: Request, rule: dict[str, Any]) -> bool:
    verbs = rule.get("verbs", [])
    if not ("*" in verbs or request.verb in verbs):
        return False
    if not request.is_resource:
        urls = rule.get("nonResourceURLs", [])
        return any(u == "*" or u == request.path or (u.endswith("*") and request.path.startswith(u[:-1])) for u in urls)
    groups = rule.get("apiGroups", [])
    if not ("*" in groups or request.group in groups):
        return False
    combined = request.resource + (f"/{request.subresource}" if request.subresource else "")
    resources = rule.get("resources", [])
    if not any(r in {"*", combined} or (request.subresource and r == f"*/{request.subresource}") for r in resources):
        return False
    names = rule.get("resourceNames", [])
    return not names or request.name in names


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()


def service_account(namespace: str, name: str) -> User:
    """A ServiceAccount's user and groups (k8s.io/apiserver pkg/authentication/serviceaccount, UserInfo)."""
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")
    return User(f"system:serviceaccount:{namespace}:{name}", groups)


def _applies(binding: dict[str, Any], user: User) -> bool:
    """rule.go appliesToUser: a User subject by name, a Group by one of the user's groups, a ServiceAccount by its
    user name (its namespace defaulting to the binding's)."""
    for subject in binding.get("subjects", []):
        namespace = subject.get("namespace") or binding["metadata"].get("namespace", "")
        name = {
            "ServiceAccount": f"system:serviceaccount:{namespace}:{subject['name']}",
            "User": subject["name"],
        }.get(subject["kind"])
        if user.name == name or (subject["kind"] == "Group" and subject["name"] in user.groups):
            return True
    return False


class Authorizer:
    """The RBAC decisions of a set of Role, ClusterRole, RoleBinding and ClusterRoleBinding objects."""

    def __init__(self, objects: Iterable[dict[str, Any]]) -> None:
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            by_kind.setdefault(obj["kind"], []).append(obj)
        self.roles = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in by_kind.get("Role", [])}
        self.cluster_roles = {r["metadata"]["name"]: r for r in by_kind.get("ClusterRole", [])}
        self.bindings = by_kind.get("RoleBinding", [])
        self.cluster_bindings = by_kind.get("ClusterRoleBinding", [])

    def _bound(self, user: User) -> Iterable[tuple[str, dict[str, Any]]]:
        """(where the rule applies: a namespace, or "*" everywhere, cluster-scoped requests included; the rule)."""
        for binding in self.cluster_bindings:
            if _applies(binding, user):
                yield from (("*", r) for r in self.cluster_roles.get(binding["roleRef"]["name"], {}).get("rules", []))
        for binding in self.bindings:
            if _applies(binding, user):
                ns, ref = binding["metadata"]["namespace"], binding["roleRef"]
                role = (
                    self.roles.get((ns, ref["name"])) if ref["kind"] == "Role" else self.cluster_roles.get(ref["name"])
                )
                yield from ((ns, r) for r in (role or {}).get("rules", []))

    def allows(self, user: User, request: Request) -> bool:
        """VisitRulesFor then RuleAllows: a RoleBinding's rules only for a request in its namespace."""
        return any(
            _rule_allows(request, rule) for where, rule in self._bound(user) if where in {"*", request.namespace}
        )

    def granted(self, user: User) -> set[tuple[str, str, str, str]]:
        """(namespace or "*", API group, resource, verb) of every resource grant of `user`, wildcards as written."""
        return {
            (where, group, resource, verb)
            for where, rule in self._bound(user)
            for group in rule.get("apiGroups", [])
            for resource in rule.get("resources", [])
            for verb in rule["verbs"]
        }
