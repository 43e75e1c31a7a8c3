"""What discovery found about the cluster, which the run's context holds and the tests' requirements are read from."""

from __future__ import annotations

from dataclasses import dataclass, field

from spider_validate.cluster.api import ApiError
from spider_validate.engine.manifests import Network
from spider_validate.engine.model import Fact, RdmaMode, Requirement


@dataclass(frozen=True)
class Facts:
    network: Network | None = None
    nodes: tuple[str, ...] = ()  # the test nodes (test_nodes): ready, schedulable, selected; in name order
    node_ips: dict[str, str] = field(default_factory=dict)  # every selected node's InternalIP, tested or not
    rdma_mode: RdmaMode = "none"  # --rdma-mode overrides what the nodes offer
    rdma_resource: str = ""  # the extended resource a pod requests for one RDMA device
    rdma_claim: str = ""  # or, in DRA mode, the DeviceClass a pod's claim names
    line_rate: tuple[float, str] | None = None  # Gb/s of the slower of the first two test nodes, and its source
    missing: dict[Fact, str] = field(default_factory=dict)  # fact -> why the cluster lacks it
    errors: dict[Fact, ApiError] = field(default_factory=dict)  # fact -> the API error that kept it unknown

    def unmet(self, requires: tuple[Requirement, ...]) -> str:
        """Why a test with these requirements cannot run here, the first missing one (empty: it can)."""
        return next((self.missing[r] for r in requires if r in self.missing), "")

    def unknown(self, requires: tuple[Requirement, ...]) -> ApiError | None:
        """The API error that kept one of these requirements unknown (the test errs with it)."""
        return next((self.errors[r] for r in requires if r in self.errors), None)
