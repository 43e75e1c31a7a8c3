"""RDMA: the device is in the pod that requests it (and not in one that does not, in exclusive modes), and
bandwidth between two nodes over the path each pod is meant to use: its underlay address's RoCE v2 GID (shared,
sriov), the node's (Soft-RoCE: rxe0 serves RoCE only in the namespace that owns its UDP socket, so its pods run on
the host network), or the EFA device's GID with the verb the device and the image's perftest both support."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from spider_validate.actions import fabric as rdma_fabric
from spider_validate.actions import servers
from spider_validate.engine import manifests
from spider_validate.engine.context import RunContext, SetupError
from spider_validate.engine.discovery import DRA_DRIVER, EFA_RESOURCE, RESOURCES, SRIOV_DEFAULT
from spider_validate.engine.model import Outcome
from spider_validate.engine.test import Test
from spider_validate.probes import rdma as rdma_probes
from spider_validate.probes.rdma import Gid
from spider_validate.suites import ring

if TYPE_CHECKING:
    from spider_validate.engine.steps import Steps

SUITE = "rdma"
# Of the line rate. EFA: AWS publishes each type's bandwidth but no figure per SRD queue pair; the test runs one, and
# one endpoint of one process reached 55 Gb/s of c5n.18xlarge's 100 (ofiwg/libfabric issue 5694): 0.4 leaves margin.
# Soft-RoCE (rxe) is CPU-bound in the kernel: 0.05.
FRACTION = {"efa": 0.4, "sriov": 0.8, "shared": 0.5, "softroce": 0.05}
ADDRESS_OF = {
    "softroce": "the node's address (Soft-RoCE pods run on the host network)",
    "efa": "the pod's underlay address (perftest's exchange; SRD addresses the EFA's GID)",
}


@dataclass(frozen=True)
class Path:
    """One side of the measured path: the pod, the address it is meant to use, its device and that address's GID."""

    pod: str
    node: str
    address: str
    gid: Gid

    def data(self) -> dict[str, Any]:
        return {"pod": self.pod, "node": self.node, "address": self.address, "device": self.gid.device,
                "gid_index": self.gid.index, "gid": self.gid.gid}  # fmt: skip

    def describe(self) -> str:
        return f"{self.pod} ({self.address}) {self.gid.device} GID index {self.gid.index}"


#: The name a pod gives its claim of one RDMA device (DRA mode).
CLAIM = "rdma"


def rdma_pod(ctx: RunContext, name: str, node: str, mode: str, resource: str | None) -> dict[str, Any]:
    """A pod with the RDMA tools; unless `resource` is None it holds one device (the resource, or in DRA mode a claim
    from `claim_template`), IPC_LOCK and (EFA) hugepages. Soft-RoCE's pods run on the host network: rxe0 answers
    RoCE only for the node's own addresses. A pod with a claim is placed on its node by affinity, not `nodeName`:
    the scheduler allocates claims, and a pod created with `nodeName` bypasses it (DRA docs, "Pre-scheduled Pods")."""
    assert ctx.network is not None
    pod = manifests.pod(
        name, ctx.namespace, ctx.run_id, "rdma", node, ctx.params.image("rdma"), ctx.network, ctx.params
    )
    wants = resource is not None
    container = pod["spec"]["containers"][0]
    container["securityContext"]["capabilities"]["add"] = ["IPC_LOCK"] if wants else []
    if mode == "softroce":
        pod["spec"]["hostNetwork"] = True
        pod["metadata"]["annotations"] = {}  # no underlay attachment
        pod["spec"].pop("securityContext", None)  # network sysctls are refused with hostNetwork
    if wants:
        limits = {"cpu": "2", "memory": "1Gi"} | ({resource: "1"} if resource else {})
        if mode == "efa":
            limits["hugepages-2Mi"] = "512Mi"
            container["volumeMounts"] = [{"name": "hugepages", "mountPath": "/dev/hugepages"}]
            pod["spec"]["volumes"] = [{"name": "hugepages", "emptyDir": {"medium": "HugePages"}}]
        container["resources"] = {"requests": dict(limits), "limits": limits}
    if wants and ctx.facts.rdma_claim:
        pod["spec"]["resourceClaims"] = [{"name": CLAIM, "resourceClaimTemplateName": template_name(name)}]
        container["resources"]["claims"] = [{"name": CLAIM}]
        del pod["spec"]["nodeName"]
        on_node = {"key": "metadata.name", "operator": "In", "values": [node]}
        pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [on_node]}]}}}  # fmt: skip
    return pod


def template_name(pod: str) -> str:
    return f"{pod}-device"


def claim_template(ctx: RunContext, pod: str) -> dict[str, Any]:
    """The ResourceClaimTemplate of `pod`'s claim: one device of the DeviceClass discovery found."""
    request = {"name": "device", "exactly": {"deviceClassName": ctx.facts.rdma_claim, "count": 1}}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": template_name(pod), "namespace": ctx.namespace, "labels": manifests.labels(ctx.run_id)},
        "spec": {"spec": {"devices": {"requests": [request]}}},
    }


def node_of(spec: dict[str, Any]) -> str:
    """The node a pod is placed on: `nodeName`, or the one its claim's affinity names."""
    if "nodeName" in spec:
        return str(spec["nodeName"])
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return str(term["matchFields"][0]["values"][0])


def claims_of(ctx: RunContext, pods: list[str]) -> list[dict[str, Any]]:
    """The claims the resource claim controller made for `pods` (it names them in the pod-claim annotation and owns
    them by the pod)."""
    return [
        c
        for c in ctx.cluster.list("ResourceClaim", ctx.namespace)
        if any(o.get("kind") == "Pod" and o.get("name") in pods for o in c["metadata"].get("ownerReferences", []))
    ]


def claim_report(claim: dict[str, Any]) -> dict[str, Any]:
    """What a claim got: its allocated devices and what the driver said of each (`status.devices`)."""
    status = claim.get("status") or {}
    results = ((status.get("allocation") or {}).get("devices") or {}).get("results", [])
    conditions = {(d["driver"], d["pool"], d["device"]): d.get("conditions", []) for d in status.get("devices", [])}
    owner = next(o["name"] for o in claim["metadata"].get("ownerReferences", []) if o.get("kind") == "Pod")
    return {
        "claim": claim["metadata"]["name"],
        "pod": owner,
        "devices": [
            {"driver": r["driver"], "pool": r["pool"], "device": r["device"],
             "ready": [c.get("reason", "") for c in conditions.get((r["driver"], r["pool"], r["device"]), [])
                       if c.get("type") == "Ready" and c.get("status") == "True"]}
            for r in results
        ],
    }  # fmt: skip


def _exec(ctx: RunContext, pod: str, script: str | list[str], timeout: float) -> tuple[int | None, str, str]:
    argv = ["sh", "-c", script] if isinstance(script, str) else script
    r = ctx.cluster.exec(ctx.namespace, pod, argv, timeout=timeout)
    return r.exit_code, r.stdout, r.stderr


def _start(ctx: RunContext, t: Steps, specs: list[dict[str, Any]]) -> dict[str, str]:
    """Create the test's RDMA pods (and, in DRA mode, their claims' templates first) and wait for them (the run's
    namespace takes them away): pod -> the address it is meant to use (its underlay address; on the host network,
    the node's). In DRA mode the step names each claim and its allocated device, or the claim not allocated."""
    claiming = [s["metadata"]["name"] for s in specs if s["spec"].get("resourceClaims")]

    def run() -> tuple[dict[str, str], Outcome]:
        for pod in claiming:
            ctx.create(claim_template(ctx, pod))
        host = [s["metadata"]["name"] for s in specs if s["spec"].get("hostNetwork")]
        try:
            if host:
                ctx.create_all(specs)
                addresses = ctx.wait_host_pods(host)
            else:
                addresses = {name: p.ip for name, p in ctx.start_pods(specs).items()}
        except SetupError as exc:
            if not claiming:
                raise
            raise SetupError(f"{exc}; {_claims_state(ctx, claiming)}") from exc
        nodes = {s["metadata"]["name"]: node_of(s["spec"]) for s in specs}
        summary = ", ".join(f"{p} on {nodes[p]} ({ip})" for p, ip in addresses.items())
        if not claiming:
            return addresses, Outcome(True, summary)
        claims = [claim_report(c) for c in claims_of(ctx, claiming)]
        return addresses, Outcome(True, f"{summary}; {_claims_state(ctx, claiming)}", data={"claims": claims})

    return t.step(f"start {len(specs)} RDMA pod(s)", run, destination="pods")


def claim_links(reports: list[dict[str, Any]], slices: list[dict[str, Any]], measured: dict[str, str]) -> Outcome:
    """DRA mode: each pod's claimed device is the RDMA device whose counters the proof of fabric reads (`measured`,
    pod -> the device of its path): the driver names it in the slice's `dra.net/rdmaDevice` attribute
    (kubernetes-sigs/dranet pkg/apis/attributes.go line 50, AttrRDMADevice), so a pod measured on another device
    than the one claimed fails."""
    published = {
        (s["spec"]["driver"], s["spec"]["pool"]["name"], d["name"]): d.get("attributes", {})
        for s in slices
        for d in s["spec"].get("devices", [])
    }
    links, wrong = [], []
    for report in reports:
        pod = report["pod"]
        for device in report["devices"]:
            key = (device["driver"], device["pool"], device["device"])
            rdma_device = (published.get(key, {}).get(f"{DRA_DRIVER}/rdmaDevice") or {}).get("string", "")
            links.append({**device, "pod": pod, "claim": report["claim"], "rdma_device": rdma_device})
            said = f"{pod}'s claim {report['claim']}: {'/'.join(key)} is {rdma_device or 'no RDMA device'}"
            if rdma_device != measured.get(pod):
                wrong.append(f"{said}, but its path and counters are {measured.get(pod) or 'none'}")
    if not links:
        return Outcome(False, "no claim of the RDMA pods has an allocated device")
    why = "; ".join(wrong) or "; ".join(
        f"{x['pod']}'s claim {x['claim']}: {x['driver']}/{x['pool']}/{x['device']} is {x['rdma_device']}, "
        "whose counters the proof reads"
        for x in links
    )
    return Outcome(not wrong, why, data={"claims": links})


def _claims_state(ctx: RunContext, pods: list[str]) -> str:
    """Each pod's claim with the device allocated to it, or the claim (and its DeviceClass) left unallocated."""
    claims = {r["pod"]: r for r in (claim_report(c) for c in claims_of(ctx, pods))}
    said = []
    for pod in pods:
        report = claims.get(pod)
        if report is None:
            said.append(f"{pod}: no claim made from ResourceClaimTemplate {template_name(pod)}")
        elif not report["devices"]:
            said.append(f"claim {report['claim']} of {pod} (DeviceClass {ctx.facts.rdma_claim}) is not allocated")
        else:
            devices = ", ".join(f"{d['driver']}/{d['pool']}/{d['device']}" for d in report["devices"])
            said.append(f"claim {report['claim']} of {pod}: {devices}")
    return "; ".join(said)


def device(ctx: RunContext, t: Steps) -> None:
    mode, resource = ctx.facts.rdma_mode, ctx.facts.rdma_resource
    node = ctx.nodes[0]
    exclusive = mode in {"efa", "sriov"}
    specs = [rdma_pod(ctx, "rdma-with", node, mode, resource)]
    if exclusive:
        specs.append(rdma_pod(ctx, "rdma-without", node, mode, None))
    _start(ctx, t, specs)

    requested = resource or f"a claim of DeviceClass {ctx.facts.rdma_claim}"

    def sees(pod: str, want: bool) -> Outcome:
        code, out, err = _exec(ctx, pod, "ibv_devices", 30)
        return device_outcome(pod, requested, want, code, out + err)

    t.step("device in the pod that requests it", lambda: sees("rdma-with", True), "rdma", "rdma-with", requested)
    if exclusive:
        t.step("no device without a request", lambda: sees("rdma-without", False), "rdma", "rdma-without", "-")


def device_outcome(pod: str, resource: str, want: bool, code: int | None, output: str) -> Outcome:
    """Whether `ibv_devices` in `pod` shows a device exactly when the pod requested one."""
    if code is None:
        return Outcome(False, "the exit code of ibv_devices was lost", transient=True)
    found = rdma_probes.parse_devices(output)
    if want:
        if found:
            return Outcome(True, f"{pod} sees {', '.join(found)}")
        return Outcome(False, f"{pod} requests {resource} but sees no RDMA device ({output.strip()[:120]})")
    if found:
        return Outcome(False, f"{pod} requests no RDMA device but sees {', '.join(found)}: isolation is broken")
    return Outcome(True, f"{pod} sees none (isolated)")


def required_gbps(rate: float, mode: str) -> tuple[float, str]:
    """The bandwidth to reach: a fraction of the line rate (FRACTION says where each comes from)."""
    fraction = FRACTION[mode]
    return rate * fraction, f"{fraction:g} x {rate:g} Gb/s"


def judge(bw: rdma_probes.Bandwidth, threshold: float, how: str) -> Outcome:
    data = {
        "peak_gbps": round(bw.peak_gbps, 2),
        "average_gbps": round(bw.average_gbps, 2),
        "min_gbps": round(threshold, 3),
        "unit": bw.unit,
        "bytes": bw.size_bytes,
    }
    summary = f"average {bw.average_gbps:.2f} Gb/s, peak {bw.peak_gbps:.2f} Gb/s ({bw.size_bytes} B messages)"
    return Outcome(bw.average_gbps >= threshold, f"{summary}, needs {threshold:.2f} ({how})", data=data)


def path_of(mode: str, pod: str, node: str, address: str, table: list[Gid], devices: list[str]) -> Path | str:
    """The side of the path `pod` is meant to use: the RoCE v2 GID of `address`, or on EFA its device's GID; or why
    there is none (never another address's GID: a node's or another pod's would measure another path)."""
    if mode == "efa":
        efa = [d for d in devices if d.startswith("rdmap")]
        if not efa:
            return f"{pod}: no EFA device ({', '.join(devices) or 'none'})"
        found = rdma_probes.efa_gid(table, efa[0])
    else:
        found = rdma_probes.roce_gid(table, address)
    return Path(pod, node, address, found) if isinstance(found, Gid) else f"{pod}: {found}"


def _path(ctx: RunContext, mode: str, pod: str, node: str, address: str) -> tuple[Path, Outcome] | Outcome:
    _code, table, err = _exec(ctx, pod, rdma_probes.GID_TABLE_SCRIPT, 60)
    devices = rdma_probes.parse_devices(_exec(ctx, pod, "ibv_devices", 30)[1]) if mode == "efa" else []
    found = path_of(mode, pod, node, address, rdma_probes.parse_gid_table(table), devices)
    if isinstance(found, str):
        return Outcome(False, f"{found} {err.strip()[:120]}".strip())
    why = ADDRESS_OF.get(mode, "the pod's underlay address")
    return found, Outcome(True, f"{found.gid.describe()}: {why}", data=found.data())


def efa_verb(caps: dict[str, tuple[int | None, str]], probe: str) -> tuple[str, Outcome] | Outcome:
    """The verb for EFA from both devices' capabilities (pod -> (device_caps, its output)) and the image's perftest."""
    unread = {pod: out for pod, (value, out) in caps.items() if value is None}
    if unread:
        pod, out = next(iter(unread.items()))
        return Outcome(False, f"{pod}: cannot read the EFA's capabilities with pyverbs (python3-pyverbs): {out}")
    common = 0xFFFFFFFF
    for value, _ in caps.values():
        common &= value or 0
    chosen = rdma_probes.choose_efa_verb(common, rdma_probes.srd_verbs(probe))
    if isinstance(chosen, str):
        return Outcome(False, chosen)
    verb, why = chosen
    return verb, Outcome(True, why, data={"verb": verb, "device_caps": common})


def _verb(ctx: RunContext, mode: str, paths: dict[str, Path]) -> tuple[str, Outcome] | Outcome:
    if mode != "efa":
        return "write", Outcome(True, "RDMA write over RC", data={"verb": "write"})
    caps: dict[str, tuple[int | None, str]] = {}
    for pod, path in paths.items():
        _code, out, err = _exec(ctx, pod, rdma_probes.efa_caps_command(path.gid.device), 30)
        caps[pod] = (int(out.strip()), "") if out.strip().isdigit() else (None, (err or out).strip()[-200:])
    probe = _exec(ctx, next(iter(paths)), rdma_probes.SRD_PROBE_SCRIPT, 60)[1]
    return efa_verb(caps, probe)


def used_the_paths(output: str, client: Path, server: Path) -> str:
    """Why perftest's own account of the GIDs it used is not the two intended ones (empty: it is)."""
    said = rdma_probes.perftest_gids(output)
    if not said:
        return "perftest did not print the GIDs it used"
    wrong = [
        f"{side} GID {said.get(side, 'none')} instead of {path.gid.gid} ({path.address})"
        for side, path in (("local", client), ("remote", server))
        if said.get(side) != path.gid.gid
    ]
    return "perftest used " + "; ".join(wrong) if wrong else ""


def threshold(ctx: RunContext, mode: str) -> tuple[float, str]:
    """The Gb/s a pairing must reach and where that comes from: --rdma-min-gbps, else the line rate's fraction."""
    if ctx.params.rdma_min_gbps is not None:
        return ctx.params.rdma_min_gbps, "--rdma-min-gbps"
    rate, source = ctx.facts.line_rate or (0.0, "")  # none with --rdma-min-gbps
    need, how = required_gbps(rate, mode)
    return need, f"{how}, {source}"


def perftest(ctx: RunContext, verb: str, mode: str, path: Path, port: int, server: Path | None = None) -> list[str]:
    """ib_<verb>_bw on `path`'s device and GID: the server, or (given the `server`'s path) the client; bounded."""
    seconds = ctx.params.rdma_seconds
    peer = server.address if server else None
    command = rdma_probes.bw_command(verb, mode, path.gid.device, path.gid.index, port, seconds, peer)
    return ["timeout", str(seconds + 30), *command]


def port_of(ctx: RunContext, key: str = "") -> int:
    """A port unique to the run (and to `key`: a pairing of the ring)."""
    return 20000 + zlib.crc32(f"{ctx.run_id}{key}".encode()) % 20000


def measure(
    ctx: RunContext, verb: str, mode: str, client: Path, server: Path, port: int
) -> tuple[rdma_probes.Bandwidth, Outcome] | Outcome:
    """The client's run against the listening server: its figure judged against the threshold, over the GIDs
    perftest itself says it used."""
    need, how = threshold(ctx, mode)
    command = perftest(ctx, verb, mode, client, port, server)
    _code, out, err = _exec(ctx, client.pod, command, ctx.params.rdma_seconds + 40)
    data = {"verb": verb, "client": client.data(), "server": server.data()}
    measured = f"{verb}: {client.describe()} -> {server.describe()}"
    try:
        bw = rdma_probes.parse_perftest(out + err)
    except rdma_probes.PerftestError as exc:
        return Outcome(False, f"ib_{verb}_bw failed ({measured}): {exc}", data=data)
    if wrong := used_the_paths(out, client, server):
        return Outcome(False, f"{measured}: {wrong}", data=data | {"perftest_gids": rdma_probes.perftest_gids(out)})
    outcome = judge(bw, need, how)
    return bw, Outcome(outcome.ok, f"{measured}: {outcome.detail}", data=data | outcome.data)


def bandwidth(ctx: RunContext, t: Steps) -> None:
    mode, resource = ctx.facts.rdma_mode, ctx.facts.rdma_resource
    server, client = "rdma-server", "rdma-client"
    nodes = {server: ctx.nodes[0], client: ctx.nodes[1]}
    addresses = _start(ctx, t, [rdma_pod(ctx, pod, node, mode, resource) for pod, node in nodes.items()])
    port = port_of(ctx)
    paths: dict[str, Path] = {
        pod: t.step(f"RDMA path of {pod}", partial(_path, ctx, mode, pod, nodes[pod], addresses[pod]), "rdma", pod)
        for pod in (server, client)
    }
    verb = t.step("verb", partial(_verb, ctx, mode, paths), "rdma", client, server)
    devices = {pod: path.gid.device for pod, path in paths.items()}
    if ctx.facts.rdma_claim:

        def link() -> Outcome:
            reports = [claim_report(c) for c in claims_of(ctx, [server, client])]
            return claim_links(reports, ctx.cluster.list("ResourceSlice"), devices)

        t.step("claimed devices are the measured ones", link, "rdma", "pods", "claims")
    before = t.step("RDMA counters before", partial(rdma_fabric.read, ctx, devices), "rdma", "pods", "counters")

    def start_server() -> tuple[str, Outcome] | Outcome:
        command = perftest(ctx, verb, mode, paths[server], port)
        pid = servers.start(ctx, server, command, port)
        if isinstance(pid, Outcome):
            return pid
        return pid, Outcome(True, f"ib_{verb}_bw listens on {addresses[server]}:{port} (killed after {command[1]}s)")

    pid = t.step("start the server", start_server, "rdma", server, f"port {port}")
    measure_ = partial(measure, ctx, verb, mode, paths[client], paths[server], port)
    measured = t.step(f"bandwidth {client} -> {server}", measure_, "rdma", client, server)
    sender, receiver = (client, server) if rdma_probes.data_flow(verb)[0] == "client" else (server, client)
    seconds = ctx.params.rdma_seconds
    proof = partial(rdma_fabric.proof, ctx, sender, receiver, devices, before, measured, seconds, verb)
    t.step("traffic crossed the RDMA devices", proof, "rdma", sender, receiver)

    def stop() -> Outcome:
        servers.stop(ctx, server, pid)
        return Outcome(True, "server stopped")

    t.step("stop the server", stop, "rdma", server, "-")
    if mode == "efa":
        pingpong = partial(rdma_fabric.fi_pingpong, ctx, server, client, addresses[server], port + 1)
        t.step(f"fi_pingpong {client} -> {server}", pingpong, "rdma", client, server)


def ring_pods(ctx: RunContext) -> dict[str, str]:
    """node -> the ring's RDMA pod on it."""
    return {node: f"rdma-ring-{i}" for i, node in enumerate(sorted(ctx.nodes))}


def bandwidth_ring(ctx: RunContext, t: Steps) -> None:
    """RDMA bandwidth on every node without n^2 pairs: an RDMA pod per node, each pod's path and the verb chosen as
    rdma/bandwidth chooses them (for all the pods' devices at once), then perftest between ring neighbours a round
    of disjoint pairs at a time (suites/ring.py), each pairing and node judged against the RDMA threshold. The proof
    of fabric (counters) stays with rdma/bandwidth: a ring is about which node is slow."""
    mode, resource = ctx.facts.rdma_mode, ctx.facts.rdma_resource
    pods = ring_pods(ctx)
    addresses = _start(ctx, t, [rdma_pod(ctx, pod, node, mode, resource) for node, pod in pods.items()])
    paths: dict[str, Path] = {
        pod: t.step(f"RDMA path of {pod}", partial(_path, ctx, mode, pod, node, addresses[pod]), "rdma", pod)
        for node, pod in pods.items()
    }
    verb = t.step("verb", partial(_verb, ctx, mode, paths), "rdma", "pods", "-")

    def one(pair: ring.Pair) -> ring.Measured:
        client, server = paths[pods[pair[0]]], paths[pods[pair[1]]]
        port = port_of(ctx, "/".join(pair))
        pid = servers.start(ctx, server.pod, perftest(ctx, verb, mode, server, port), port)
        if isinstance(pid, Outcome):
            return ring.Measured(None, pid.detail)
        try:
            measured = measure(ctx, verb, mode, client, server, port)
        finally:
            servers.stop(ctx, server.pod, pid)
        if isinstance(measured, Outcome):
            return ring.Measured(None, measured.detail, measured.data)
        bw, outcome = measured
        return ring.Measured(bw.average_gbps, outcome.detail, outcome.data)

    figures = ring.measure(sorted(pods), one)
    ring.judge(t, figures, threshold(ctx, mode)[0], "rdma", pods, {"transport": f"RDMA {verb}"})


def _mode(ctx: RunContext) -> tuple[str, str]:
    """The mode and resource `manifests` shows the pods in (EFA's, the fullest: a device, IPC_LOCK, hugepages)."""
    mode, resource = (ctx.params.rdma_mode, "") if ctx.params.rdma_mode != "auto" else ("efa", EFA_RESOURCE)
    return mode, resource or RESOURCES.get(mode, SRIOV_DEFAULT)


def objects(ctx: RunContext) -> list[dict[str, Any]]:
    """The pods an RDMA test of two nodes creates, for `manifests`."""
    node, (mode, resource) = ctx.nodes[0], _mode(ctx)
    return [rdma_pod(ctx, "rdma-with", node, mode, resource), rdma_pod(ctx, "rdma-without", node, mode, None)]


def ring_objects(ctx: RunContext) -> list[dict[str, Any]]:
    """The ring's pods, one with a device on every node, for `manifests`."""
    mode, resource = _mode(ctx)
    return [rdma_pod(ctx, pod, node, mode, resource) for node, pod in ring_pods(ctx).items()]


TESTS = [
    Test(
        SUITE,
        "device",
        "a pod that requests the RDMA resource sees its device; without, none (exclusive modes)",
        steps=device,
        labels=("rdma",),
        requires_nodes=1,
        requires=("rdma", "rdma-image"),
        pod_security="privileged",  # IPC_LOCK, which perftest needs to pin its buffers
        objects=objects,
    ),
    Test(
        SUITE,
        "bandwidth",
        "perftest between pods on two nodes, over the GIDs of the addresses they are meant to use, reaches the minimum",
        steps=bandwidth,
        labels=("rdma", "cross-node"),
        requires_nodes=2,
        requires=("rdma", "rdma-image", "line-rate"),
        pod_security="privileged",
        objects=objects,
    ),
    Test(
        SUITE,
        "bandwidth-ring",
        "RDMA bandwidth of every node: perftest between ring neighbours in rounds of disjoint pairs, each judged "
        "against the minimum; a node slow in every pairing is named",
        steps=bandwidth_ring,
        labels=("rdma", "cross-node", "every-node"),
        requires_nodes=2,
        requires=("rdma", "rdma-image", "line-rate"),
        pod_security="privileged",
        objects=ring_objects,
    ),
]
