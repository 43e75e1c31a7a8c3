"""The facts of the cluster that decide which tests can run, found once before any pod is created."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from spider_validate.model import Requirement, Skip

if TYPE_CHECKING:
    from spider_validate.context import RunContext


@dataclass(frozen=True)
class Facts:
    rdma_mode: str = "none"  # efa | shared | sriov | none (--rdma-mode overrides what the nodes offer)
    rdma_resource: str = ""  # the extended resource a pod requests for one RDMA device
    missing: dict[Requirement, str] = field(default_factory=dict)  # requirement -> why the cluster lacks it

    def unmet(self, requires: tuple[Requirement, ...]) -> str:
        """Why a test with these requirements cannot run here (empty: it can)."""
        return "; ".join(self.missing[r] for r in requires if r in self.missing)


def discover(ctx: RunContext) -> Facts:
    """The facts of the test nodes (ctx.nodes, from preflight's node selection)."""
    from spider_validate.suites import rdma

    try:
        mode, resource = rdma.mode_of(ctx)
    except Skip as why:
        return Facts(missing={"rdma": str(why)})
    return Facts(mode, resource)
