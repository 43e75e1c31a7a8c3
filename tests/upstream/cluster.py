"""A small model of a cluster running the chart's hooks: install, uninstall and reinstall as Helm drives them.

Helm's part comes from tests/upstream/helm_hooks.py; Spiderpool's from tests/upstream/spiderpool.py and
spiderpool_ippool.py (its IPPool webhook, configured by the chart's spiderpool-conf) and spiderpool_coordinator.py
(the default SpiderCoordinator spiderpool-init makes, through its webhook); kubectl's:
- kubectl resolves each TYPE through discovery: an unknown type fails the command, `--ignore-not-found` only ignores
  missing objects (k8s.io/cli-runtime pkg/resource/builder.go, mappingFor: `the server doesn't have a resource type`);
- `kubectl delete TYPE NAME... --selector=...` refuses names with a selector (builder.go: "name cannot be provided
  when a selector is specified"); positional arguments are TYPE[,TYPE...] then names (kubectl delete --help);
- `kubectl delete` waits for the objects to be gone unless `--wait=false` (kubectl delete --help: "--wait=true:
  If true, wait for resources to be gone before returning. This waits for finalizers.");
- `kubectl apply --server-side` keeps the fields other managers set (server-side apply: a field is removed only by
  the manager that owns it), so an object someone else created is merged, not replaced.
The helm hook Job runs its containers in order and fails at the first failing command.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

from tests.chart import NAMESPACE, Rendered
from tests.upstream import helm_hooks, names, spiderpool, spiderpool_coordinator, spiderpool_ippool

RESOURCES = {  # plural -> (kind, namespaced, CRD group or "" for built-ins)
    "deployments": ("Deployment", True, ""),
    "services": ("Service", True, ""),
    "spidermultusconfigs": ("SpiderMultusConfig", True, "spiderpool.spidernet.io"),
    "spiderippools": ("SpiderIPPool", False, "spiderpool.spidernet.io"),
    "sriovnetworknodepolicies": ("SriovNetworkNodePolicy", True, "sriovnetwork.openshift.io"),
}
KINDS = {kind: (plural, namespaced, group) for plural, (kind, namespaced, group) in RESOURCES.items()}


class CommandFailed(Exception):
    pass


def labels_match(labels: dict[str, str], selector: str) -> bool:
    """A label selector's terms `!key`, `key!=value` and `key=value` (k8s.io/apimachinery pkg/labels/selector.go,
    Requirement.Matches: NotEquals also matches an object without the key)."""
    for term in filter(None, selector.split(",")):
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        elif "!=" in term:
            key, _, value = term.partition("!=")
            if labels.get(key) == value:
                return False
        else:
            key, _, value = term.partition("=")
            if labels.get(key) != value:
                return False
    return True


@dataclass
class Cluster:
    crd_groups: set[str] = field(default_factory=set)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    #: pool name -> {address: pod name} (the pool's status.allocatedIPs)
    allocations: dict[str, dict[str, str]] = field(default_factory=dict)
    #: the IPPool webhook as spiderpool-controller runs it: install() sets it from the chart's spiderpool-conf
    pool_webhook: spiderpool_ippool.IPPoolWebhook = field(default_factory=spiderpool_ippool.IPPoolWebhook)
    log: list[str] = field(default_factory=list)

    def has_kind(self, kind: str) -> bool:
        group = KINDS[kind][2] if kind in KINDS else spiderpool_group(kind)
        return not group or group in self.crd_groups

    def key(self, obj: dict[str, Any]) -> tuple[str, str, str]:
        kind = obj["kind"]
        namespaced = KINDS[kind][1] if kind in KINDS else kind != "SpiderCoordinator"
        return (kind, obj["metadata"].get("namespace", NAMESPACE) if namespaced else "", obj["metadata"]["name"])

    def get(self, kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace if KINDS.get(kind, ("", True))[1] else "", name))

    # --- the API server with Spiderpool's webhooks and controller --------------------------------------------
    def admit(self, obj: dict[str, Any], live: dict[str, Any] | None = None) -> dict[str, Any]:
        """The API server's name and label rules, then Spiderpool's webhooks on a create (`live` None) or an update
        of `live`; a refusal fails the command."""
        refused = list(names.invalid(obj))
        if refused:
            raise CommandFailed("\n".join(refused))
        if obj["kind"] == "SpiderMultusConfig":
            obj = spiderpool.mutate_multus_config(obj)
            error = spiderpool.validate_multus_config(obj)
            if error:
                raise CommandFailed(f"admission webhook denied SpiderMultusConfig {obj['metadata']['name']}: {error}")
        if obj["kind"] == "SpiderIPPool":
            name = obj["metadata"]["name"]
            pools = [o for k, o in self.objects.items() if k[0] == "SpiderIPPool"]
            obj = self.pool_webhook.default(obj)
            if live is None:
                refusal = self.pool_webhook.validate_create(obj, pools)
            else:  # the stored status: the addresses the agent allocated from it
                records = {ip: {"pod": pod, "podUid": ""} for ip, pod in (self.allocations.get(name) or {}).items()}
                stored = {**live, "status": {"allocatedIPs": json.dumps(records)}}
                refusal = self.pool_webhook.validate_update(stored, obj, pools)
            if refusal:
                raise CommandFailed(spiderpool_ippool.admission_denial(refusal, name))
        return obj

    def create(self, obj: dict[str, Any]) -> bool:
        """False when it already exists."""
        key = self.key(obj)
        if key in self.objects:
            return False
        self.objects[key] = self.admit(copy.deepcopy(obj))
        return True

    def delete(self, key: tuple[str, str, str]) -> None:
        obj = self.objects[key]
        if key[0] == "Deployment":  # its pods go, and the agent releases their addresses
            for holders in self.allocations.values():
                for ip in [ip for ip, pod in holders.items() if pod.startswith(key[2] + "-")]:
                    del holders[ip]
        if obj["metadata"].get("finalizers"):
            obj["metadata"]["deletionTimestamp"] = "now"
        else:
            del self.objects[key]
        self.reconcile()

    def reconcile(self) -> None:
        """spiderpool-controller: a dying pool with no allocation loses its finalizer and goes."""
        for key, obj in list(self.objects.items()):
            dying = key[0] == "SpiderIPPool" and obj["metadata"].get("deletionTimestamp")
            if dying and spiderpool_ippool.pool_finalizer_removable(self.allocations.get(key[2])):
                del self.objects[key]

    # --- kubectl ----------------------------------------------------------------------------------------------
    def kubectl(self, argv: list[str], files: dict[str, str]) -> None:
        verb, *rest = argv[1:]
        flags = dict(a.removeprefix("--").partition("=")[::2] for a in rest if a.startswith("--"))
        positional = [a for a in rest if not a.startswith("-")]
        if verb == "wait":
            return
        if verb == "apply":
            for obj in filter(None, yaml.safe_load_all(files[flags["filename"]])):
                self.apply(obj)
            return
        if verb != "delete":
            raise CommandFailed(f"kubectl {verb}: not modelled")
        types, names = positional[0].split(","), positional[1:]
        if names and "selector" in flags:
            raise CommandFailed("error: name cannot be provided when a selector is specified")
        for plural in types:
            if plural not in RESOURCES or not self.has_kind(RESOURCES[plural][0]):
                raise CommandFailed(f'error: the server doesn\'t have a resource type "{plural}"')
        wait = flags.get("wait", "true") != "false"
        for plural in types:
            kind, namespaced, _ = RESOURCES[plural]
            namespace = flags.get("namespace", "default") if namespaced else ""
            name_field = flags.get("field-selector", "").removeprefix("metadata.name=")
            for key, obj in list(self.objects.items()):
                if key[0] != kind or key[1] != namespace or (names and key[2] not in names):
                    continue
                if name_field and key[2] != name_field:
                    continue
                if labels_match(obj["metadata"].get("labels") or {}, flags.get("selector", "")):
                    self.delete(key)
                    self.log.append(f"deleted {kind} {key[2]}")
                    if wait and key in self.objects:
                        raise CommandFailed(f"timed out waiting for the deletion of {kind} {key[2]} (finalizer)")

    def apply(self, obj: dict[str, Any]) -> None:
        if not self.has_kind(obj["kind"]):
            raise CommandFailed(f'error: resource mapping not found for kind "{obj["kind"]}"')
        key = self.key(obj)
        live = self.objects.get(key)
        if live is None:
            self.objects[key] = self.admit(copy.deepcopy(obj))
        else:
            merged = _merge(live, obj)  # fields other managers set stay
            self.objects[key] = self.admit(merged, live)
        self.log.append(f"applied {obj['kind']} {obj['metadata']['name']}")


def spiderpool_group(kind: str) -> str:
    return "spiderpool.spidernet.io" if kind.startswith("Spider") else "sriovnetwork.openshift.io"


def _merge(live: dict[str, Any], applied: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(live)
    for k, v in applied.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "")) for e in container.get("env", []) if "value" in e}


def run_job(cluster: Cluster, job: dict[str, Any], configmaps: dict[str, dict[str, str]]) -> None:
    """One hook Job: its init containers then its containers, each command run by its model."""
    pod = job["spec"]["template"]["spec"]
    containers = pod.get("initContainers", []) + pod["containers"]
    mounts = {m["name"]: m["mountPath"] for c in containers for m in c.get("volumeMounts", [])}
    files = {
        f"{mounts[v['name']]}/{key}": text
        for v in pod.get("volumes", [])
        if "configMap" in v and v["name"] in mounts
        for key, text in configmaps.get(v["configMap"]["name"], {}).items()
    }
    for container in containers:
        command = container.get("command", [])
        program = PurePosixPath(command[0]).name if command else ""
        if program == "kubectl":
            cluster.kubectl(command, files)
        elif program == "spiderpool-init":
            env = _env(container)
            init_coordinator(cluster, env)
            if env.get("SPIDERPOOL_INIT_ENABLE_MULTUS_CONFIG") == "true" and env.get(
                "SPIDERPOOL_INIT_DEFAULT_CNI_NAME"
            ):
                placeholder = spiderpool.init_placeholder(
                    env["SPIDERPOOL_INIT_DEFAULT_CNI_NAME"], env["SPIDERPOOL_INIT_DEFAULT_CNI_NAMESPACE"]
                )
                if cluster.create(placeholder):
                    cluster.log.append("spiderpool-init created the placeholder")
        elif program == "spiderpool-controller" and "clean" in command:
            for key in [k for k in cluster.objects if k[0] in spiderpool.CLEANED_KINDS]:
                cluster.objects.pop(key)  # finalizers stripped, then deleted (clean.go:182-259)
            cluster.crd_groups -= spiderpool.CLEANED_CRD_GROUPS
            cluster.log.append("spiderpool cleanup deleted the CRDs")


def init_coordinator(cluster: Cluster, env: dict[str, str]) -> None:
    """spiderpool-init's default SpiderCoordinator (cmd/spiderpool-init/cmd/root.go:36-57), first of what it makes:
    a bad variable ends the job; the webhook's refusal it retries until the hook's timeout (client.go:48-67); an
    existing one it leaves as it is."""
    try:
        coordinator = spiderpool_coordinator.init_coordinator(env)
    except spiderpool_coordinator.InitExit as e:
        raise CommandFailed(f"spiderpool-init: {e}") from None
    if coordinator is None or cluster.get("SpiderCoordinator", coordinator["metadata"]["name"], "") is not None:
        return
    coordinator = spiderpool_coordinator.default(coordinator)
    if refusal := spiderpool_coordinator.validate(coordinator):
        raise CommandFailed(f"spiderpool-init: failed to create default Coordinator until the timeout: {refusal}")
    cluster.create(coordinator)
    cluster.log.append("spiderpool-init created the default coordinator")


def run_hooks(cluster: Cluster, rendered: list[Rendered], event: str) -> list[str]:
    """Helm running the hooks of one event in its order; a failing hook fails the operation (CommandFailed)."""
    configmaps = {r.obj["metadata"]["name"]: r.obj.get("data", {}) for r in rendered if r.obj["kind"] == "ConfigMap"}
    jobs = {(r.obj["kind"], r.obj["metadata"]["name"]): r.obj for r in rendered}
    ran = []
    for hook in helm_hooks.execution_order(rendered, event):
        if hook.kind == "Job":
            run_job(cluster, jobs[(hook.kind, hook.name)], configmaps)
            ran.append(hook.name)
    return ran


def install(cluster: Cluster, rendered: list[Rendered], event: str = "post-install") -> list[str]:
    """`helm install`: CRDs unless present (pkg/action/install.go:206-212), resources (each through the API server's
    validation: names and labels), then the post-install hooks."""
    refused = [error for r in rendered for error in names.invalid(r.obj)]
    if refused:
        raise CommandFailed("\n".join(refused))
    if event == "post-install":
        cluster.crd_groups |= spiderpool.CLEANED_CRD_GROUPS
        cluster.pool_webhook = spiderpool_ippool.IPPoolWebhook.of_chart([r.obj for r in rendered])
    return run_hooks(cluster, rendered, event)


def uninstall(cluster: Cluster, rendered: list[Rendered]) -> list[str]:
    """`helm uninstall`: the pre-delete hooks, then the release's resources (pkg/action/uninstall.go:137-150)."""
    return run_hooks(cluster, rendered, "pre-delete")
