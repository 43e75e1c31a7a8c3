"""What a test is made of and the one result model every report reads: an Action runs one probe (a command in a
pod, or an API read) and compares its outcome with what is expected; its ActionResult, a TestResult, a RunResult.

The Test that gathers actions (`test.py`) sits above the context it reads; this module imports nothing of the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"  # the check could not be made (setup or API trouble), as opposed to a wrong answer
    WARN = "warn"  # worth knowing but not wrong (waste, such as a prefix no pool uses): does not fail the run


# Pod Security Admission's level the run's namespace must enforce for a test's pods to be admitted: baseline
# refuses added capabilities beyond the runtime's defaults (IPC_LOCK for RDMA) and hostNetwork.
PodSecurity = Literal["baseline", "privileged"]
# A fact of the cluster a test needs (facts.Facts); without it the test is skipped before any pod is created.
# "line-rate" is the line rate of the first two test nodes, needed only without --rdma-min-gbps; "rdma-image" the
# RDMA tools image, which has no default (--image rdma=REF: scripts/build-rdma-tools-image.sh builds one).
Requirement = Literal["rdma", "statefulset", "line-rate", "rdma-image"]
# What discovery finds: what tests may require, and the network and nodes that every test but preflight needs.
Fact = Literal[Requirement, "network", "nodes"]
# How the test nodes offer RDMA (facts.Facts): EFA, a shared HCA, SR-IOV virtual functions, Soft-RoCE (rxe0,
# which serves the node's address only: its pods run on the host network), or not at all.
RdmaMode = Literal["efa", "shared", "sriov", "softroce", "none"]
# What an action runs: an API read, a command in a pod (ping, curl, perftest), a perf figure (iperf3, sockperf).
Probe = Literal["api", "ping", "http", "rdma", "throughput", "latency"]


class Skip(Exception):
    """Raised by a scenario or test that cannot run here; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Outcome:
    """What one probe observed. `transient` failures (lost exit code, API 5xx) may be retried."""

    ok: bool
    detail: str
    transient: bool = False
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    name: str
    probe: Probe
    source: str
    destination: str
    run: Callable[[], Outcome]
    expect_success: bool = True
    retry: bool = True  # False: the outcome reports what discovery found, already retried; asking again is useless


@dataclass
class ActionResult:
    scenario: str
    action: str
    probe: Probe
    source: str
    destination: str
    expected: Literal["success", "failure"]
    status: Status
    detail: str
    attempts: int
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0  # epoch seconds (format 2)


@dataclass
class TestResult:
    __test__: ClassVar[bool] = False  # not a pytest test class

    suite: str
    name: str
    description: str
    status: Status = Status.PASS
    reason: str = ""
    actions: list[ActionResult] = field(default_factory=list)
    seconds: float = 0.0
    started: float = field(default_factory=time.time)

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"

    def finish(self) -> None:
        self.seconds = time.time() - self.started
        if self.status is Status.PASS and any(a.status is Status.WARN for a in self.actions):
            self.status = Status.WARN
        if self.status in {Status.PASS, Status.WARN} and any(a.status is Status.ERROR for a in self.actions):
            self.status = Status.ERROR
        if self.status in {Status.PASS, Status.WARN, Status.ERROR} and any(
            a.status is Status.FAIL for a in self.actions
        ):
            self.status = Status.FAIL


# The JSON result's format (result_schema.json). 2 added the environment, each action's start time and the
# command and output of probes run in pods (data.exec); format 1 had no format_version. 3: a cross-node ping or HTTP
# is one part of a command its source pod runs for all its destinations (actions.reach.Batch): data.exec.command is
# its own job of that shared command, stdout its part of the output (stderr merged in), shared_by how many share it.
FORMAT_VERSION = 3


@dataclass
class RunResult:
    run_id: str
    namespace: str
    cluster: str
    tests: list[TestResult] = field(default_factory=list)
    setup_error: str = ""
    preflight_failed: bool = False
    interrupted: bool = False
    timed_out: bool = False
    diagnostics: str = ""
    cleanup: list[str] = field(default_factory=list)
    seconds: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)  # versions, nodes, pods, pools, flags (environment.py)
    format_version: int = FORMAT_VERSION

    def counts(self) -> dict[str, int]:
        return {s.value: sum(t.status is s for t in self.tests) for s in Status}

    @property
    def passed(self) -> bool:
        return (
            not self.setup_error
            and not self.interrupted
            and not self.timed_out
            and all(t.status in {Status.PASS, Status.SKIP, Status.WARN} for t in self.tests)
        )
