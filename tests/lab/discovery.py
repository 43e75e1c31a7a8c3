"""What the lab's API server says about itself: its version, the resources it serves (discovery, legacy and
aggregated), and their OpenAPI v3 documents, as kube-apiserver 1.36 says them (the project's default minor).

- Resources: the validator's kinds (`cluster.api.KINDS`) and the server's own the wire needs (`store.SERVER_KINDS`),
  with the verbs the lab implements. Spiderpool's kinds come from its CRDs in ../shared (the six of v1.2.2: their names,
  short names, categories, scope and printer columns), which the lab installs as CustomResourceDefinition objects.
  A built-in kind's short names and categories are its REST storage's (kubernetes pkg/registry/*/storage,
  ShortNames and Categories; cited in BUILTIN_NAMES).
- Legacy discovery: APIVersions at /api, APIGroupList at /apis, an APIGroup at /apis/GROUP, an APIResourceList per
  group version (apimachinery pkg/apis/meta/v1/types.go), subresources listed as `pods/exec` (kind PodExecOptions,
  verbs create and get) and `pods/log` (kind Pod, get): apiserver pkg/endpoints/installer.go.
- Aggregated discovery (apidiscovery.k8s.io/v2, APIGroupDiscoveryList): what client-go asks /api and /apis for
  first (discovery/discovery_client.go:62-70 at v0.35.2, acceptDiscoveryFormats) and recognizes by the answer's
  Content-Type (:270-296); each resource with its responseKind and scope, subresources under it, freshness Current
  (k8s.io/api apidiscovery/v2/types.go).
- OpenAPI v3: the index at /openapi/v3 (`paths`: each group version's serverRelativeURL with a hash), and per group
  version a document whose paths carry x-kubernetes-group-version-kind and, on PATCH, the fieldValidation query
  parameter kubectl looks for before it asks the server to validate (cli-runtime
  pkg/resource/query_param_verifier_v3.go:77-131 at v0.35.2) and the patch types the server takes (kubectl
  pkg/cmd/apply/patcher.go:226-253: strategic merge for built-in kinds, not for custom resources); components are
  the schemas kubernetes-validate ships for Kubernetes 1.36 (built-in kinds) and each CRD's openAPIV3Schema.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tests.lab.store import STORED

VERSION = {"major": "1", "minor": "36", "gitVersion": "v1.36.3", "gitCommit": "lab", "gitTreeState": "clean",
           "buildDate": "2026-02-10T00:00:00Z", "goVersion": "go1.25.6", "compiler": "gc",
           "platform": "linux/amd64"}  # fmt: skip
SHARED = Path(__file__).resolve().parents[3] / "shared"
CRD_DIR = SHARED / "upstream" / "spiderpool-v1.2.2" / "crds"
SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.36.0-local" / "_definitions.json"
VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
# (short names, categories) of the built-in kinds served: pkg/registry/core/{pod,node,namespace,service,event,
# configmap}/storage/storage.go and pkg/registry/apps/{deployment,daemonset,statefulset}/storage/storage.go,
# apiextensions-apiserver pkg/registry/customresourcedefinition/etcd.go; RBAC's kinds have none.
BUILTIN_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Pod": (("po",), ("all",)),
    "Node": (("no",), ()),
    "Namespace": (("ns",), ()),
    "Service": (("svc",), ("all",)),
    "Event": (("ev",), ()),
    "ConfigMap": (("cm",), ()),
    "Deployment": (("deploy",), ("all",)),
    "DaemonSet": (("ds",), ("all",)),
    "StatefulSet": (("sts",), ("all",)),
    "CustomResourceDefinition": (("crd", "crds"), ("api-extensions",)),
}
SUBRESOURCES = {"Pod": {"exec": ("PodExecOptions", ("create", "get")), "log": ("Pod", ("get",))}}


@dataclass(frozen=True)
class Resource:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    crd: dict[str, Any] = field(default_factory=dict, compare=False)  # the CRD of a custom resource

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        """The group version's path: `api/v1`, `apis/apps/v1`."""
        return f"apis/{self.group_version}" if self.group else f"api/{self.version}"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def columns(self) -> list[dict[str, Any]]:
        """A custom resource's additionalPrinterColumns."""
        versions = self.crd.get("spec", {}).get("versions", [])
        return next((v.get("additionalPrinterColumns", []) for v in versions if v["name"] == self.version), [])


@functools.cache
def crds() -> tuple[dict[str, Any], ...]:
    """Spiderpool's CRDs, as its chart installs them."""
    return tuple(yaml.safe_load(p.read_text()) for p in sorted(CRD_DIR.glob("spiderpool.spidernet.io_*.yaml")))


@functools.cache
def resources() -> dict[str, Resource]:
    """Every kind served, by kind."""
    out = {}
    for kind, (api_version, plural, namespaced) in STORED.items():
        group, _, version = api_version.rpartition("/")
        out[kind] = Resource(kind, group, version, plural, namespaced, *BUILTIN_NAMES.get(kind, ((), ())))
    for crd in crds():
        spec, names = crd["spec"], crd["spec"]["names"]
        version = next(v["name"] for v in spec["versions"] if v.get("storage"))
        short, categories = tuple(names.get("shortNames", ())), tuple(names.get("categories", ()))
        namespaced = spec["scope"] == "Namespaced"
        out[names["kind"]] = Resource(
            names["kind"], spec["group"], version, names["plural"], namespaced, short, categories, crd
        )
    return out


def by_path(prefix: str, plural: str) -> Resource | None:
    return next((r for r in resources().values() if r.prefix == prefix and r.plural == plural), None)


def group_versions() -> dict[str, list[Resource]]:
    """The resources of each group version (its path prefix), the core group first."""
    out: dict[str, list[Resource]] = {}
    for r in sorted(resources().values(), key=lambda r: (bool(r.group), r.group, r.plural)):
        out.setdefault(r.prefix, []).append(r)
    return out


# -- legacy discovery ----------------------------------------------------------------------------------------------


def api_versions(address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}  # fmt: skip


def api_group(group: str) -> dict[str, Any]:
    version = next(r.version for r in resources().values() if r.group == group)
    entry = {"groupVersion": f"{group}/{version}", "version": version}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [entry], "preferredVersion": entry}


def api_group_list() -> dict[str, Any]:
    groups = sorted({r.group for r in resources().values() if r.group})
    items = [{k: v for k, v in api_group(g).items() if k not in {"kind", "apiVersion"}} for g in groups]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def api_resource_list(prefix: str) -> dict[str, Any] | None:
    served = group_versions().get(prefix)
    if not served:
        return None
    listed = []
    for r in served:
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(VERBS)}  # fmt: skip
        entry |= {"shortNames": list(r.short_names)} if r.short_names else {}
        listed.append(entry | ({"categories": list(r.categories)} if r.categories else {}))
        for sub, (kind, verbs) in SUBRESOURCES.get(r.kind, {}).items():
            listed.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                           "kind": kind, "verbs": list(verbs)})  # fmt: skip
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": served[0].group_version,
            "resources": listed}  # fmt: skip


# -- aggregated discovery ------------------------------------------------------------------------------------------

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """Whether the Accept header asks for apidiscovery.k8s.io/v2 (client-go's acceptDiscoveryFormats)."""
    for media in accept.split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in media.split(";")[1:])}
        if params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2":
            return params.get("as") == "APIGroupDiscoveryList"
    return False


def aggregated(core: bool) -> dict[str, Any]:
    """APIGroupDiscoveryList of /api (core, the group named "") or /apis (every other group)."""
    items = []
    for served in group_versions().values():
        first = served[0]
        if bool(first.group) == core:
            continue
        listed = []
        for r in served:
            entry: dict[str, Any] = {
                "resource": r.plural,
                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                "scope": "Namespaced" if r.namespaced else "Cluster",
                "singularResource": r.kind.lower(),
                "verbs": list(VERBS),
            }
            entry |= {"shortNames": list(r.short_names)} if r.short_names else {}
            entry |= {"categories": list(r.categories)} if r.categories else {}
            subs = [
                {"subresource": s, "responseKind": {"group": "", "version": "v1", "kind": kind}, "verbs": list(verbs)}
                for s, (kind, verbs) in SUBRESOURCES.get(r.kind, {}).items()
            ]
            listed.append(entry | ({"subresources": subs} if subs else {}))
        version = {"version": first.version, "resources": listed, "freshness": "Current"}
        items.append({"metadata": {"name": first.group, "creationTimestamp": None}, "versions": [version]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


# -- OpenAPI v3 ----------------------------------------------------------------------------------------------------


@functools.cache
def _definitions() -> dict[str, Any]:
    """kubernetes-validate's 1.36 schemas, their references pointed at OpenAPI's components."""
    text = SCHEMAS.read_text().replace('"#/$defs/', '"#/components/schemas/')
    defs: dict[str, Any] = json.loads(text)["$defs"]
    return defs


def _reachable(names: list[str]) -> dict[str, Any]:
    """The named definitions and every one they refer to."""
    defs = _definitions()
    out: dict[str, Any] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in out or name not in defs:
            continue
        out[name] = defs[name]
        todo += [ref.rsplit("/", 1)[1] for ref in _refs(defs[name])]
    return out


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [
            *([node["$ref"]] if isinstance(node.get("$ref"), str) else []),
            *(r for v in node.values() for r in _refs(v)),
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def schema_name(r: Resource) -> str:
    """The component name of a kind's schema: the built-in's definition, or a custom resource's reversed group
    (`io.spidernet.spiderpool.v2beta1.SpiderIPPool`, as the apiserver's CRD OpenAPI builder names it)."""
    if r.crd:
        return ".".join([*reversed(r.group.split(".")), r.version, r.kind])
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    return next(n for n, d in _definitions().items() if gvk in d.get("x-kubernetes-group-version-kind", []))


OBJECT_META = {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
PATCH = {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}


def crd_schema(r: Resource) -> dict[str, Any]:
    """A custom resource's openAPIV3Schema with ObjectMeta's schema for its metadata, as the CRD's OpenAPI builder
    publishes it."""
    schema = next(v["schema"]["openAPIV3Schema"] for v in r.crd["spec"]["versions"] if v["name"] == r.version)
    return {**schema, "properties": {**schema.get("properties", {}), "metadata": OBJECT_META}}


def _operations(r: Resource) -> dict[str, Any]:
    """The paths of one resource: list and create on the collection; get, put, patch and delete on an item. The
    writes take fieldValidation; patch takes the patch types the kind accepts (no strategic merge for a custom
    resource)."""
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    ref = {"$ref": f"#/components/schemas/{schema_name(r)}"}
    patch_types = ["application/json-patch+json", "application/merge-patch+json"]
    patch_types += [] if r.crd else ["application/strategic-merge-patch+json"]
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    validation = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
    whole = {"content": {"application/json": {"schema": ref}}}

    def op(action: str, params: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"responses": ok, "parameters": params, "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk, **extra}  # fmt: skip

    base = f"/{r.prefix}/" + ("namespaces/{namespace}/" if r.namespaced else "") + r.plural
    patch = {"content": {t: {"schema": PATCH} for t in patch_types}}
    return {
        base: {"get": op("list", []), "post": op("post", validation, requestBody=whole)},
        base + "/{name}": {
            "get": op("get", []),
            "put": op("put", validation, requestBody=whole),
            "patch": op("patch", validation, requestBody=patch),
            "delete": op("delete", []),
        },
    }


@functools.cache
def openapi_document(prefix: str) -> str:
    """The OpenAPI v3 document of one group version (JSON text; empty when the group version is not served)."""
    served = group_versions().get(prefix)
    if not served:
        return ""
    names = [schema_name(r) for r in served if not r.crd]
    schemas = _reachable([*names, OBJECT_META["$ref"].rsplit("/", 1)[1], PATCH["$ref"].rsplit("/", 1)[1]])
    paths: dict[str, Any] = {}
    for r in served:
        if r.crd:
            gvk = {"group": r.group, "version": r.version, "kind": r.kind}
            schemas[schema_name(r)] = crd_schema(r) | {"x-kubernetes-group-version-kind": [gvk]}
        paths |= _operations(r)
    document = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]}, "paths": paths,
                "components": {"schemas": schemas}}  # fmt: skip
    return json.dumps(document)


def openapi_index() -> dict[str, Any]:
    """/openapi/v3: each group version's document, its URL carrying the hash of its content."""
    paths = {}
    for prefix in group_versions():
        digest = hashlib.sha512(openapi_document(prefix).encode()).hexdigest().upper()
        paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={digest}"}
    return {"paths": paths}


def unknown_fields(r: Resource, obj: dict[str, Any]) -> list[str]:
    """The paths of the fields the kind's schema does not declare (what strict decoding refuses and the default
    fieldValidation, Warn, drops): `spec.foo`, `spec.containers[0].bar`. A field under a schema that keeps unknown
    fields (x-kubernetes-preserve-unknown-fields, or a map's additionalProperties) is declared."""
    schema = crd_schema(r) if r.crd else _definitions()[schema_name(r)]
    return _unknown(schema, obj, "")


def _unknown(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    schema = _resolve(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None and extra is None:
            return []
        out = []
        for key, sub in value.items():
            where = f"{path}.{key}" if path else key
            if props is not None and key in props:
                out += _unknown(props[key], sub, where)
            elif isinstance(extra, dict):
                out += _unknown(extra, sub, where)
            elif key not in {"apiVersion", "kind"}:
                out.append(where)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [p for i, item in enumerate(value) for p in _unknown(schema["items"], item, f"{path}[{i}]")]
    return []


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = _definitions()[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def patch_schema(r: Resource) -> tuple[dict[str, Any], Any] | None:
    """A built-in kind's schema and how to follow its references, for a strategic merge patch (None for a custom
    resource, which takes none)."""
    return None if r.crd else (_definitions()[schema_name(r)], _resolve)
