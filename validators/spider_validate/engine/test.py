"""A Test: a list of scenarios, each yielding Actions from the run's context, whose probes run concurrently; or,
when its actions depend on each other, a function of the context and a step handle (`steps.Steps`) that runs each
step at once and hands its result to the next line. It declares what it requires, its Pod Security level and pods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from spider_validate.engine.model import Action, Fact, PodSecurity, Requirement

if TYPE_CHECKING:
    from spider_validate.engine.context import RunContext
    from spider_validate.engine.steps import Steps


@dataclass(frozen=True)
class Scenario:
    name: str
    actions: Callable[[RunContext], Iterable[Action]]


@dataclass(frozen=True)
class Test:
    __test__: ClassVar[bool] = False  # not a pytest test class

    suite: str
    name: str
    description: str
    scenarios: tuple[Scenario, ...] = ()
    # or, when each step needs what the one before made (create, check, delete): the steps, in order
    steps: Callable[[RunContext, Steps], None] | None = None
    labels: tuple[str, ...] = ()
    requires_nodes: int = 0  # skipped with a reason when the run has fewer schedulable nodes
    requires: tuple[Requirement, ...] = ()
    # preflight: the facts this test reports on; it runs after discovery, and also unselected when other tests run
    # (recorded then only when it does not pass: it says why nothing can be tested)
    checks: tuple[Fact, ...] = ()
    pod_security: PodSecurity = "baseline"
    # the pods the test creates beyond the run's shared ones, for `manifests` and the pod-security check; called
    # with a context that has no cluster behind it
    objects: Callable[[RunContext], list[dict[str, Any]]] | None = None

    def __post_init__(self) -> None:
        assert bool(self.scenarios) != bool(self.steps), f"{self.id}: scenarios or steps, one of them"

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"
