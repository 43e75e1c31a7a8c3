"""Runs tests: preflight, discovery, setup, the selected tests concurrently, then finalizers, whatever happened."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import partial
from types import FrameType
from typing import TypeVar

from spider_validate.cluster.api import ApiError, Cluster
from spider_validate.engine import diagnostics, manifests
from spider_validate.engine.context import RunContext, SetupError
from spider_validate.engine.discovery import discover
from spider_validate.engine.model import Action, ActionResult, Fact, RunResult, Skip, Status, TestResult
from spider_validate.engine.params import Parameters
from spider_validate.engine.steps import StepFailed, Steps, execute
from spider_validate.engine.test import Test

Progress = Callable[[TestResult], None]
T = TypeVar("T")


def new_run_id() -> str:
    return time.strftime("%m%d%H%M%S") + "-" + secrets.token_hex(2)


@contextmanager
def interrupt_handler(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C: said at once, stop and clean up. Second: leave at once (cleanup has its own deadline too)."""
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
        print("\ninterrupted: stopping and cleaning up (Ctrl-C again to exit at once)", file=sys.stderr, flush=True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def in_thread(fn: Callable[[], object], name: str) -> tuple[threading.Event, list[BaseException]]:
    """Start `fn` in a daemon thread; the event is set when it ends, the list gets what it raised."""
    done, errors = threading.Event(), []

    def call() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the waiting thread
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=call, name=name, daemon=True).start()
    return done, errors


def wait_for(done: threading.Event, seconds: float) -> bool:
    """Wait for `done` by polling: Ctrl-C must land in a sleep, never in Thread.join, which CPython 3.11 then
    takes for the thread's end (threading.py, _wait_for_tstate_lock, bpo-45274)."""
    end = time.monotonic() + seconds
    while not done.is_set() and (remaining := end - time.monotonic()) > 0:
        time.sleep(min(0.05, remaining))
    return done.is_set()


def bounded(fn: Callable[[], object], seconds: float) -> BaseException | None:
    """Run `fn` for at most `seconds` (in a thread it may outlive); what stopped it, or None when it finished."""
    done, errors = in_thread(fn, "bounded")
    try:
        finished = wait_for(done, seconds)
    except KeyboardInterrupt as exc:
        return exc
    if not finished:
        return TimeoutError(f"no answer within {seconds:.0f}s")
    return errors[0] if errors else None


def too_few_nodes(ctx: RunContext, test: Test) -> str:
    """Why the test cannot run on the run's nodes (empty: it can)."""
    if len(ctx.nodes) >= test.requires_nodes:
        return ""
    return f"needs {test.requires_nodes} schedulable nodes, the run has {len(ctx.nodes)}"


def run_test(ctx: RunContext, test: Test) -> TestResult:
    """Gather the test's actions from its scenarios, then probe them concurrently (they are independent); or run
    its steps in order."""
    result = TestResult(test.suite, test.name, test.description)
    try:
        if few := too_few_nodes(ctx, test):
            raise Skip(few)
        if test.steps:
            return _run_steps(ctx, test, test.steps, result)
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

        with ThreadPoolExecutor(ctx.params.concurrency, test.name, initializer=ctx.track_thread) as pool:
            result.actions = list(pool.map(probe, planned))
    except Skip as skip:
        result.status, result.reason = Status.SKIP, str(skip)
    except (ApiError, SetupError) as exc:
        result.status, result.reason = Status.ERROR, str(exc)
    except Exception as exc:  # a bug of this test: its error, and the run still reports and cleans up
        result.status, result.reason = Status.ERROR, f"spider-validate failed in this test: {exc!r}"
        traceback.print_exc()
    result.finish()
    return result


def _run_steps(
    ctx: RunContext, test: Test, steps: Callable[[RunContext, Steps], None], result: TestResult
) -> TestResult:
    """The steps in order; the first that does not pass ends the test. A Skip before any step skips it, after
    some it is the reason beside their results."""
    try:
        steps(ctx, Steps(ctx, test.name, result.actions))
    except StepFailed:
        pass
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
        on_action: Callable[[ActionResult], None] | None = None,
    ) -> None:
        self.params = params
        self.known = tests
        self.tests = [t for t in tests if params.selects(t.id)]
        self.progress = progress or (lambda result: None)
        run_id = run_id or new_run_id()
        self.ctx = RunContext(cluster, params, run_id, params.run_namespace(run_id))
        if on_action:
            self.ctx.on_action = on_action
        self.result = RunResult(run_id, self.ctx.namespace, "")
        self._lock = threading.Lock()
        self._closed = False  # set once the deadline or Ctrl-C ended the run: late results are dropped
        self._done: threading.Event | None = None  # set when the run's worker thread has ended

    @property
    def abandoned(self) -> bool:
        """Whether a thread of the run is still blocked in a call it gave up on (deadline, Ctrl-C)."""
        return bool(self._done and not self._done.is_set()) or any(t.is_alive() for t in self.ctx.threads)

    def _record(self, result: TestResult) -> None:
        with self._lock:
            if self._closed:
                return
            self.result.tests.append(result)
        self.progress(result)

    def _skip_rest(self, tests: list[Test], reason: str, status: Status = Status.SKIP) -> None:
        done = {t.id for t in self.result.tests}
        for test in tests:
            if test.id not in done:
                self._record(TestResult(test.suite, test.name, test.description, status, reason))

    def _close(self, tests: list[Test], reason: str, status: Status) -> None:
        """End the run now: the rest is `status`, and whatever the worker still reports is dropped."""
        self.ctx.stop.set()
        with self._lock:
            self._closed = True
            done = {t.id for t in self.result.tests}
            rest = [TestResult(t.suite, t.name, t.description, status, reason) for t in tests if t.id not in done]
            self.result.tests += rest
        for result in rest:
            self.progress(result)

    def run(self) -> RunResult:
        start = time.monotonic()
        deadline = start + self.params.timeout
        self.ctx.expires = time.time() + self.params.timeout + self.params.cleanup_timeout
        with interrupt_handler(self.ctx.stop):
            try:
                self._until(deadline)
            except KeyboardInterrupt:
                self.result.interrupted = True
                self._close(self.tests, "interrupted (Ctrl-C)", Status.SKIP)
            finally:
                if self._done is not None:  # a call in flight (a create) ends before cleanup starts, if it can
                    wait_for(self._done, min(2.0, self.params.cleanup_timeout))
                if not self.result.passed and not self.result.interrupted:
                    self._diagnose()
                self._cleanup()
        self.result.seconds = time.monotonic() - start
        return self.result

    def _until(self, deadline: float) -> None:
        """The run in a worker thread; this (main) thread keeps the deadline and takes Ctrl-C, whatever blocks."""
        self._done, failure = in_thread(lambda: self._run(deadline), "run")
        if not wait_for(self._done, max(0.0, deadline - time.monotonic())):
            self.result.timed_out = True
            self._close(self.tests, f"the run's timeout ({self.params.timeout:g}s) expired", Status.ERROR)
            return
        if failure:
            raise failure[0]

    def _run(self, deadline: float) -> None:
        """Preflight's checks of the API, discovery, preflight's checks of the facts, then the rest."""
        preflight = [t for t in self.tests if t.suite == "preflight"]
        rest = [t for t in self.tests if t.suite != "preflight"]
        # The API's own checks come before discovery: a hanging API still shows whether /version answered.
        for test in preflight:
            if not test.checks:
                self._preflight(test)
        # A check of the facts runs unselected too when other tests run: it says why nothing can be tested.
        fact_checks = [t for t in self.known if t.checks and (t in preflight or rest)]
        if fact_checks or rest:
            # what the fact checks that run report on (all of them when other tests run), what the others require
            needs: set[Fact] = {f for t in fact_checks for f in t.checks} | {r for t in rest for r in t.requires}
            facts = self.ctx.facts = discover(self.ctx, needs)
            self.ctx.network, self.ctx.nodes, self.ctx.node_ips = facts.network, list(facts.nodes), facts.node_ips
        for test in fact_checks:
            self._preflight(test, selected=test in preflight)
        if self.result.preflight_failed:
            self._skip_rest(rest, "preflight failed: fix what it reports, then run again")
            return
        if not rest:
            return
        if self.ctx.network is None or not self.ctx.nodes:
            self.result.preflight_failed = True
            self._skip_rest(rest, "no network or no node to test on: see preflight/network and preflight/nodes")
            return
        runnable = []
        for test in rest:
            # too few nodes comes first, as when run_test was the first to look
            few = too_few_nodes(self.ctx, test)
            error = None if few else self.ctx.facts.unknown(test.requires)
            unmet = few or self.ctx.facts.unmet(test.requires)
            if error or unmet:
                status = Status.ERROR if error else Status.SKIP
                self._record(TestResult(test.suite, test.name, test.description, status, str(error or unmet)))
            else:
                runnable.append(test)
        try:
            runnable = self._admitted(runnable)
            if not runnable:
                return  # each one skipped, said why: no pod is needed
            self.ctx.pod_security = manifests.pod_security(t.pod_security for t in runnable)
            objects = manifests.run_objects(
                self.ctx.run_id,
                self.ctx.namespace,
                self.ctx.nodes,
                self.ctx.network,
                self.params,
                self.ctx.pod_security,
            )
            self.ctx.deploy(objects)
        except (SetupError, ApiError) as exc:
            self.result.setup_error = str(exc)
            self._skip_rest(rest, f"setup failed: {exc}", Status.ERROR)
            return
        self._run_concurrently(runnable, deadline)

    def _admitted(self, tests: list[Test]) -> list[Test]:
        """In an existing namespace, the tests whose pods its Pod Security level admits; the others are skipped,
        saying what an administrator runs (the run's own pods need baseline: short of it, nothing runs)."""
        if not self.params.in_namespace:
            return tests
        ns = self.ctx.api(lambda: self.ctx.cluster.get("Namespace", self.ctx.namespace))
        if ns is None:
            raise SetupError(f"namespace {self.ctx.namespace} does not exist (spider-validate run --help)")
        enforced = ns["metadata"].get("labels", {}).get(manifests.PSA_ENFORCE)
        if not manifests.admits(enforced, "baseline"):
            raise SetupError(
                f"namespace {self.ctx.namespace} enforces Pod Security {enforced}; the run's pods need baseline: "
                + manifests.label_command(self.ctx.namespace, "baseline")
            )
        admitted = []
        for test in tests:
            if manifests.admits(enforced, test.pod_security):
                admitted.append(test)
                continue
            command = manifests.label_command(self.ctx.namespace, test.pod_security)
            why = (
                f"namespace {self.ctx.namespace} enforces Pod Security {enforced}; this test's pods need "
                f"{test.pod_security} (an administrator: {command})"
            )
            self._record(TestResult(test.suite, test.name, test.description, Status.SKIP, why))
        return admitted

    def _preflight(self, test: Test, selected: bool = True) -> None:
        """Run a preflight test; one that was not selected is recorded only when it does not pass (its checks are
        not reported as they finish either: preflight runs alone, before the tests)."""
        on_action = self.ctx.on_action
        if not selected:
            self.ctx.on_action = lambda action: None
        try:
            result = run_test(self.ctx, test)
        finally:
            self.ctx.on_action = on_action
        if selected or result.status is not Status.PASS:
            self._record(result)
        if result.status is not Status.PASS and result.status is not Status.SKIP:
            self.result.preflight_failed = True

    def _run_concurrently(self, tests: list[Test], deadline: float) -> None:
        pool = ThreadPoolExecutor(max(1, self.params.concurrency), "test", initializer=self.ctx.track_thread)
        pending: dict[Future[TestResult], Test] = {pool.submit(run_test, self.ctx, t): t for t in tests}
        try:
            while pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.result.timed_out = True
                    self._close(tests, f"the run's timeout ({self.params.timeout:g}s) expired", Status.ERROR)
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
        """Finalizers in reverse order, each bounded by what is left of the cleanup deadline, even if it blocks."""
        deadline = time.monotonic() + self.params.cleanup_timeout
        for what, fn in reversed(list(self.ctx.finalizers)):
            remaining = deadline - time.monotonic()
            error = bounded(partial(self.ctx.api, fn), remaining) if remaining > 0 else TimeoutError("cleanup deadline")
            if error:
                self.result.cleanup.append(f"NOT removed: {what} ({error}); run `spider-validate cleanup`")
            else:
                self.result.cleanup.append(f"removed {what}")
        self.ctx.finalizers.clear()

    def _diagnose(self) -> None:
        def collect() -> None:
            self.result.diagnostics = diagnostics.collect(self.ctx, self.result)

        error = bounded(collect, self.params.cleanup_timeout)
        if error:
            self.result.diagnostics = f"{self.result.diagnostics or 'not written'} (incomplete: {error})"
