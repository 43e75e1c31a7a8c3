"""One action run with its retries and timing (`execute`), and the step handle a test of steps gets (`Steps`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from spider_validate.cluster.api import ApiError
from spider_validate.engine.model import Action, ActionResult, Outcome, Probe, Skip, Status
from spider_validate.probes.output import UnreadableOutput

if TYPE_CHECKING:
    from spider_validate.engine.context import RunContext

T = TypeVar("T")


def execute(ctx: RunContext, scenario: str, action: Action) -> ActionResult:
    """Run one probe; retry a transient failure (bounded), never a probe that is expected to fail."""
    start, started = time.monotonic(), time.time()
    attempts = 0
    delay = ctx.params.retry_delay
    while True:
        attempts += 1
        try:
            outcome = action.run()
        except ApiError as exc:
            outcome = Outcome(False, f"API error: {exc}", transient=exc.transient)
        except UnreadableOutput as exc:  # a hostile or broken output fails this action, never the run
            outcome = Outcome(False, str(exc))
        if outcome.ok == action.expect_success:
            status = Status.PASS
            break
        retry = action.retry and action.expect_success and outcome.transient and attempts <= ctx.params.retries
        if not retry or ctx.stop.is_set():
            status = Status.ERROR if outcome.transient else Status.FAIL
            break
        time.sleep(delay)
        delay *= 2
    result = ActionResult(
        scenario,
        action.name,
        action.probe,
        action.source,
        action.destination,
        "success" if action.expect_success else "failure",
        status,
        outcome.detail,
        attempts,
        time.monotonic() - start,
        outcome.data,
        started,
    )
    ctx.on_action(result)
    return result


class StepFailed(Exception):
    """A step did not pass: its result is recorded, and the test stops (the steps after it need what it made)."""


class Steps:
    """The handle a test of steps gets: each step runs at once through `execute` (retries, timing, result), is
    recorded, and hands back what it made; one that does not pass stops the test."""

    def __init__(self, ctx: RunContext, test: str, results: list[ActionResult]) -> None:
        self.ctx, self.test, self.results = ctx, test, results

    @overload
    def step(
        self, name: str, fn: Callable[[], Outcome], probe: Probe = "api", source: str = "", destination: str = ""
    ) -> None: ...

    @overload
    def step(
        self,
        name: str,
        fn: Callable[[], tuple[T, Outcome] | Outcome],
        probe: Probe = "api",
        source: str = "",
        destination: str = "",
    ) -> T: ...

    def step(
        self,
        name: str,
        fn: Callable[[], Any],
        probe: Probe = "api",
        source: str = "",
        destination: str = "",
    ) -> Any:
        """Run `fn` as the step `name`: it returns its Outcome, or (what it made, its Outcome) when it passes;
        `source` defaults to the test's name."""
        made: list[Any] = [None]

        def run() -> Outcome:
            made[0] = None  # what this attempt made: a retried step's is its last attempt's
            outcome = fn()
            if isinstance(outcome, tuple):
                made[0], outcome = outcome
            return outcome

        if self.ctx.stop.is_set():
            raise Skip("the run was stopped")
        self.results.append(execute(self.ctx, self.test, Action(name, probe, source or self.test, destination, run)))
        if self.results[-1].status is not Status.PASS:
            raise StepFailed(name)
        return made[0]
