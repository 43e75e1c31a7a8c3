"""The run's parameters (from the command line) and the images it uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from spider_validate.engine.model import RdmaMode

# Pinned by digest where the digest is published in a source we can cite; the others by tag (no such source: pass
# --image NAME=REF@sha256:... to pin them).
DEFAULT_IMAGES = {
    "client": "docker.io/nicolaka/netshoot:v0.14",  # sh, ping, curl
    # `serve-hostname` answers every path with the pod's name; the digest is the one registry.k8s.io serves, from its
    # promotion manifest (kubernetes/k8s.io registry.k8s.io/images/k8s-staging-e2e-test-images/images.yaml, 2.53)
    "server": "registry.k8s.io/e2e-test-images/agnhost:2.53"
    "@sha256:99c6b4bb4a1e1df3f0b3752168c89358794d02258ebebc26bf21c29399011a85",
    # perftest built with SRD, fi_pingpong, python3-pyverbs, iproute2: none is published (Spiderpool's rdma-tools has
    # no libfabric): required, --image rdma=REF; scripts/build-rdma-tools-image.sh builds one
    "rdma": "",
    "perf": "docker.io/nicolaka/netshoot:v0.14",  # iperf3 and ss (its Dockerfile); no sockperf: see perf/latency
}
RUN_LABEL = "spider-validate/run"
# Annotation on what a run creates: when `spider-validate cleanup` may remove it (epoch seconds), or "never" while
# its creator runs (a watch); without it (a run of an older version), whenever.
EXPIRES = "spider-validate/expires"
MANAGED_BY = {"app.kubernetes.io/managed-by": "spider-validate"}


@dataclass
class Parameters:
    namespace_prefix: str = "spider-validate"
    # an existing namespace to run in (validators/rbac.yaml's namespaced mode): nothing is created outside it and
    # the run removes its own objects one by one; None: a namespace of its own, <prefix>-<run id>, created and deleted
    in_namespace: str | None = None
    tests: tuple[str, ...] = ()
    timeout: float = 900.0
    cleanup_timeout: float = 120.0
    concurrency: int = 4
    keep: bool = False
    image_registry: str | None = None
    image_overrides: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    nodes: tuple[str, ...] = ()
    network: str | None = None  # "namespace/name" or "name" of a SpiderMultusConfig
    attach: Literal["auto", "default", "secondary"] = "auto"  # auto: the network's attachment label
    apps: int = 0  # deploy this many apps of the run's own instead of using the chart's
    ipam_pods: int = 20  # pods the ipam/scale test creates at once
    ipam_range: str | None = None  # free addresses (a-b) of the network's subnet for the ipam suite's own pools
    pool: str | None = None  # an existing pool the ipam suite may allocate from instead (a user's pool)
    release_timeout: float = 60.0  # how long Spiderpool may take to release an address
    rdma_mode: RdmaMode | Literal["auto"] = "auto"  # auto: what the test nodes offer (discovery.detect_mode)
    rdma_min_gbps: float | None = None  # default: a mode-specific fraction of the node type's line rate
    rdma_seconds: int = 5  # duration of the bandwidth measurement
    perf_seconds: int = 10  # duration of each perf measurement (k8s-netperf's default)
    perf_streams: int = 8  # parallel TCP streams: one flow is capped on EC2 (5 Gb/s, 10 in a placement group)
    perf_tolerance: float = 0.10  # pods must reach (1 - this) of the host's throughput (k8s-netperf's 10%)
    perf_latency_tolerance: float = 0.5  # the pods' p50 latency may be at most (1 + this) times the host's
    http_port: int = 8080
    pod_ready_timeout: float = 180.0
    stuck_after: float = 45.0  # report a pod Pending/ContainerCreating this long with a warning event as stuck
    probe_timeout: int = 5
    retries: int = 3
    retry_delay: float = 1.0
    diagnostics_dir: str = "."

    def run_namespace(self, run_id: str) -> str:
        return self.in_namespace or f"{self.namespace_prefix}-{run_id}"

    def image(self, name: str) -> str:
        ref = self.image_overrides.get(name, DEFAULT_IMAGES[name])
        if self.image_registry and ref and name not in self.image_overrides:
            ref = f"{self.image_registry.rstrip('/')}/{ref.split('/', 1)[1]}"
        return ref

    def images(self) -> dict[str, str]:
        """The images the run uses; the RDMA image only when given (it has no default)."""
        return {name: ref for name in DEFAULT_IMAGES if (ref := self.image(name))}

    def selects(self, test_id: str) -> bool:
        """--test REGEX includes (any), --test !REGEX excludes; no include means all."""
        includes = [p for p in self.tests if not p.startswith("!")]
        excludes = [p[1:] for p in self.tests if p.startswith("!")]
        if includes and not any(re.search(p, test_id) for p in includes):
            return False
        return not any(re.search(p, test_id) for p in excludes)
