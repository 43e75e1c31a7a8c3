"""A test of steps (steps.Steps): each step runs at once, hands back what it made, and the first that does not
pass ends the test; skips, API errors and a stopped run end it as a test of scenarios would."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from spider_validate.cluster.api import ApiError
from spider_validate.engine.context import RunContext
from spider_validate.engine.model import Outcome, Skip, Status, TestResult
from spider_validate.engine.params import Parameters
from spider_validate.engine.runner import run_test
from spider_validate.engine.steps import Steps
from spider_validate.engine.test import Test


def ran(steps: Callable[[RunContext, Steps], None], ctx: RunContext | None = None) -> TestResult:
    ctx = ctx or RunContext(None, Parameters(retry_delay=0.01), "run", "ns")  # type: ignore[arg-type]  # no API
    return run_test(ctx, Test("suite", "name", "a test of steps", steps=steps))


def test_a_step_hands_its_value_to_the_next_line_and_is_recorded() -> None:
    seen: list[int] = []

    def steps(ctx: RunContext, t: Steps) -> None:
        made = t.step("make", lambda: (41, Outcome(True, "made 41", data={"n": 41})), destination="pool")
        seen.append(made)
        t.step("check", lambda: Outcome(made + 1 == 42, f"{made} + 1"), "rdma", "pod-a", "pod-b")

    result = ran(steps)
    assert result.status is Status.PASS and seen == [41]
    first, second = result.actions
    assert (first.scenario, first.action, first.probe, first.source, first.destination) == (
        "name",
        "make",
        "api",
        "name",
        "pool",
    )
    assert first.detail == "made 41" and first.data == {"n": 41} and first.expected == "success"
    assert (second.action, second.probe, second.source, second.destination) == ("check", "rdma", "pod-a", "pod-b")


def test_the_first_step_that_fails_ends_the_test() -> None:
    after: list[str] = []

    def steps(ctx: RunContext, t: Steps) -> None:
        t.step("one", lambda: Outcome(True, "ok"))
        t.step("two", lambda: Outcome(False, "wrong"))
        after.append("three")  # never reached
        t.step("three", lambda: Outcome(True, "ok"))

    result = ran(steps)
    assert result.status is Status.FAIL and after == []
    assert [(a.action, a.status) for a in result.actions] == [("one", Status.PASS), ("two", Status.FAIL)]


def test_a_transient_failure_is_retried_and_the_last_attempt_is_what_it_made() -> None:
    attempts: list[int] = []

    def flaky() -> tuple[int, Outcome] | Outcome:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            return Outcome(False, "API hiccup", transient=True)
        return len(attempts), Outcome(True, "answered")

    made: list[int] = []
    result = ran(lambda ctx, t: made.append(t.step("flaky", flaky)))
    assert made == [2] and result.actions[0].attempts == 2 and result.status is Status.PASS


def test_an_api_error_in_a_step_is_a_transient_outcome_and_a_lasting_one_an_error() -> None:
    def broken() -> Outcome:
        raise ApiError(503, "boom")

    result = ran(lambda ctx, t: t.step("read", broken))
    assert result.status is Status.ERROR and result.actions[0].attempts == 4  # Parameters.retries 3, then given up
    assert result.actions[0].detail.startswith("API error: ")


@pytest.mark.parametrize("after_a_step", [False, True])
def test_a_skip_skips_before_any_step_and_is_the_reason_after(after_a_step: bool) -> None:
    def steps(ctx: RunContext, t: Steps) -> None:
        if after_a_step:
            t.step("one", lambda: Outcome(True, "ok"))
        raise Skip("not here")

    result = ran(steps)
    assert result.reason == "not here"
    assert result.status is (Status.PASS if after_a_step else Status.SKIP)


def test_an_api_error_between_steps_is_the_tests_error() -> None:
    def steps(ctx: RunContext, t: Steps) -> None:
        t.step("one", lambda: Outcome(True, "ok"))
        raise ApiError(403, "forbidden")

    result = ran(steps)
    assert result.status is Status.ERROR and "forbidden" in result.reason and len(result.actions) == 1


def test_no_step_starts_once_the_run_is_stopped() -> None:
    ctx = RunContext(None, Parameters(), "run", "ns")  # type: ignore[arg-type]

    def steps(ctx: RunContext, t: Steps) -> None:
        t.step("one", lambda: Outcome(True, "ok"))
        ctx.stop.set()
        t.step("two", lambda: Outcome(True, "ok"))

    result = ran(steps, ctx)
    assert [a.action for a in result.actions] == ["one"] and result.reason == "the run was stopped"


def test_what_an_earlier_attempt_made_is_not_handed_on() -> None:
    """An attempt that made something but failed transiently, then one that made nothing: the step made nothing."""
    attempts: list[int] = []

    def flaky() -> tuple[int, Outcome] | Outcome:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            return 1, Outcome(False, "half made, then the API hiccuped", transient=True)
        return Outcome(True, "answered")

    made: list[int | None] = []
    result = ran(lambda ctx, t: made.append(t.step("flaky", flaky)))
    assert attempts == [1, 2] and made == [None] and result.status is Status.PASS
