"""Runs tests: preflight, setup, the selected tests concurrently, then finalizers, whatever happened."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from types import FrameType

from spider_validate import diagnostics, manifests
from spider_validate.context import RunContext, SetupError
from spider_validate.kube import ApiError, Cluster
from spider_validate.model import Action, ActionResult, Outcome, RunResult, Skip, Status, Test, TestResult
from spider_validate.params import Parameters

Progress = Callable[[TestResult], None]


def new_run_id() -> str:
    return time.strftime("%m%d%H%M%S") + "-" + secrets.token_hex(2)


@contextmanager
def interrupt_handler(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C: stop and clean up. Second: leave at once (cleanup's own deadline is the other guard)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            print(
                "\nforced exit: the run's resources may remain; `spider-validate cleanup` removes them", file=sys.stderr
            )
            os._exit(130)
        stop.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
        if outcome.ok == action.expect_success:
            status = Status.PASS
            break
        retry = action.expect_success and outcome.transient and attempts <= ctx.params.retries
        if not retry or ctx.stop.is_set():
            status = Status.ERROR if outcome.transient else Status.FAIL
            break
        time.sleep(delay)
        delay *= 2
    return ActionResult(
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


def run_test(ctx: RunContext, test: Test) -> TestResult:
    """Gather the test's actions from its scenarios, then probe them concurrently (they are independent)."""
    result = TestResult(test.suite, test.name, test.description)
    try:
        if len(ctx.nodes) < test.requires_nodes:
            raise Skip(f"needs {test.requires_nodes} schedulable nodes, the run has {len(ctx.nodes)}")
        if test.sequential:
            return _run_sequential(ctx, test, result)
        planned: list[tuple[str, Action]] = []
        skipped: list[str] = []
        for scenario in test.scenarios:
            try:
                planned += [(scenario.name, action) for action in scenario.actions(ctx)]
            except Skip as skip:
                skipped.append(f"{scenario.name}: {skip}")
        if not planned:
            raise Skip("; ".join(skipped) or "nothing to check")
        result.reason = "; ".join(skipped)

        def probe(item: tuple[str, Action]) -> ActionResult:
            if ctx.stop.is_set():
                raise Skip("the run was stopped")
            return execute(ctx, *item)

        with ThreadPoolExecutor(max_workers=ctx.params.concurrency, thread_name_prefix=test.name) as pool:
            result.actions = list(pool.map(probe, planned))
    except Skip as skip:
        result.status, result.reason = Status.SKIP, str(skip)
    except (ApiError, SetupError) as exc:
        result.status, result.reason = Status.ERROR, str(exc)
    result.finish()
    return result


def _run_sequential(ctx: RunContext, test: Test, result: TestResult) -> TestResult:
    """Each action runs before the next is generated; the first failure ends the test (later steps need it)."""
    try:
        for scenario in test.scenarios:
            for action in scenario.actions(ctx):
                if ctx.stop.is_set():
                    raise Skip("the run was stopped")
                result.actions.append(execute(ctx, scenario.name, action))
                if result.actions[-1].status is not Status.PASS:
                    break
            if result.actions and result.actions[-1].status is not Status.PASS:
                break
    except Skip as skip:
        if not result.actions:
            result.status = Status.SKIP
        result.reason = str(skip)
    except (ApiError, SetupError) as exc:
        result.status, result.reason = Status.ERROR, str(exc)
    result.finish()
    return result


class Runner:
    def __init__(
        self,
        cluster: Cluster,
        params: Parameters,
        tests: list[Test],
        progress: Progress | None = None,
        run_id: str | None = None,
    ) -> None:
        self.params = params
        self.tests = [t for t in tests if params.selects(t.id)]
        self.progress = progress or (lambda result: None)
        run_id = run_id or new_run_id()
        self.ctx = RunContext(cluster, params, run_id, f"{params.namespace_prefix}-{run_id}")
        self.result = RunResult(run_id, self.ctx.namespace, "")

    def _record(self, result: TestResult) -> None:
        self.result.tests.append(result)
        self.progress(result)

    def _skip_rest(self, tests: list[Test], reason: str, status: Status = Status.SKIP) -> None:
        done = {t.id for t in self.result.tests}
        for test in tests:
            if test.id not in done:
                self._record(TestResult(test.suite, test.name, test.description, status, reason))

    def run(self) -> RunResult:
        start = time.monotonic()
        deadline = start + self.params.timeout
        with interrupt_handler(self.ctx.stop):
            try:
                self._run(deadline)
            except KeyboardInterrupt:
                self.result.interrupted = True
                self.ctx.stop.set()
                self._skip_rest(self.tests, "interrupted (Ctrl-C)")
            finally:
                if not self.result.passed and not self.result.interrupted:
                    self.result.diagnostics = diagnostics.collect(self.ctx, self.result)
                self._cleanup()
        self.result.seconds = time.monotonic() - start
        return self.result

    def _run(self, deadline: float) -> None:
        preflight = [t for t in self.tests if t.suite == "preflight"]
        rest = [t for t in self.tests if t.suite != "preflight"]
        # Discovery lives in preflight: run its network and node checks even when not selected.
        from spider_validate.suites import preflight as pf

        needed = preflight or ([t for t in pf.TESTS if t.name in {"network", "nodes"}] if rest else [])
        for test in needed:
            result = run_test(self.ctx, test)
            if test in preflight or result.status is not Status.PASS:
                self._record(result)
            if result.status is not Status.PASS and result.status is not Status.SKIP:
                self.result.preflight_failed = True
        if self.result.preflight_failed:
            self._skip_rest(rest, "preflight failed: fix what it reports, then run again")
            return
        if not rest:
            return
        if self.ctx.network is None or not self.ctx.nodes:
            self.result.preflight_failed = True
            self._skip_rest(rest, "no network or no node to test on: see preflight/network and preflight/nodes")
            return
        try:
            objects = manifests.run_objects(
                self.ctx.run_id, self.ctx.namespace, self.ctx.nodes, self.ctx.network, self.params
            )
            self.ctx.deploy(objects)
        except (SetupError, ApiError) as exc:
            self.result.setup_error = str(exc)
            self._skip_rest(rest, f"setup failed: {exc}", Status.ERROR)
            return
        self._run_concurrently(rest, deadline)

    def _run_concurrently(self, tests: list[Test], deadline: float) -> None:
        pool = ThreadPoolExecutor(max_workers=max(1, self.params.concurrency), thread_name_prefix="test")
        pending: dict[Future[TestResult], Test] = {pool.submit(run_test, self.ctx, t): t for t in tests}
        try:
            while pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.result.timed_out = True
                    self.ctx.stop.set()
                    self._skip_rest(tests, f"the run's timeout ({self.params.timeout:.0f}s) expired", Status.ERROR)
                    return
                done, _ = wait(pending, timeout=min(remaining, 0.5), return_when=FIRST_COMPLETED)
                for future in done:
                    pending.pop(future)
                    self._record(future.result())
        finally:
            if pending:
                self.ctx.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)

    def _cleanup(self) -> None:
        """Finalizers in reverse order, each bounded by what is left of the cleanup deadline."""
        deadline = time.monotonic() + self.params.cleanup_timeout
        for what, fn in reversed(self.ctx.finalizers):
            if time.monotonic() > deadline:
                self.result.cleanup.append(f"NOT removed (cleanup deadline): {what}")
                continue
            try:
                self.ctx.api(fn)
                self.result.cleanup.append(f"removed {what}")
            except (ApiError, KeyboardInterrupt) as exc:
                self.result.cleanup.append(f"NOT removed: {what} ({exc}); run `spider-validate cleanup`")
        self.ctx.finalizers.clear()
