"""KubeCluster, the real `kubernetes` client code path, against a minimal API server on 127.0.0.1.

The server answers the few paths spider-validate reads and creates, in the API's JSON shapes; it checks
that the client sends what the API expects (methods, paths, label selectors, bodies) and maps errors.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from spider_validate.actions import reach as actions
from spider_validate.cluster.api import EXIT_MARKER, ApiError
from spider_validate.cluster.kube import KubeCluster
from spider_validate.engine.context import PodInfo, RunContext
from spider_validate.engine.model import Status
from spider_validate.engine.params import Parameters
from spider_validate.engine.steps import execute

from tests.lab import websocket

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
    "spec": {"containers": [{"name": "c", "image": "i"}]},
}


class Api(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, dict[str, list[str]], Any]]] = []

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        Api.requests.append((method, url.path, parse_qs(url.query), body))
        if url.path == "/version":
            self._reply(200, {"gitVersion": "v1.33.2"})
        elif url.path == "/api/v1/namespaces/ns/pods" and method == "GET":
            self._reply(200, {"kind": "PodList", "apiVersion": "v1", "items": [POD]})
        elif url.path == "/api/v1/namespaces/ns/pods" and method == "POST":
            self._reply(201, body)
        elif url.path == "/apis/spiderpool.spidernet.io/v2beta1/spiderippools/missing":
            self._reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
        elif url.path == "/api/v1/namespaces/locked/pods" or "locked" in url.query:
            self._reply(403, {"kind": "Status", "code": 403, "reason": "Forbidden"})
        elif url.path == "/api/v1/namespaces/busy/pods":
            self._reply(429, {"kind": "Status", "code": 429, "reason": "TooManyRequests"})
        elif url.path == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions":
            self._reply(200, {"items": [{"metadata": {"name": "spiderippools.spiderpool.spidernet.io"}}]})
        elif method == "DELETE":
            self._reply(200, {"kind": "Status", "status": "Success"})
        else:
            self._reply(404, {"kind": "Status", "code": 404})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, *args: object) -> None:
        pass


def write_kubeconfig(path: Path, server: str, user: dict[str, str]) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": server}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "u"}}],
        "users": [{"name": "u", "user": user}],
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[KubeCluster]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", f"http://127.0.0.1:{server.server_port}", {"token": "secret"}
    )
    Api.requests = []
    try:
        yield KubeCluster(kubeconfig)
    finally:
        server.shutdown()
        server.server_close()


def test_reads_creates_and_deletes_as_the_api_expects(cluster: KubeCluster) -> None:
    assert cluster.server_version() == "v1.33.2"
    assert cluster.crd_names() == {"spiderippools.spiderpool.spidernet.io"}
    pods = cluster.list("Pod", "ns", "a=b")
    assert pods[0]["metadata"]["name"] == "p" and pods[0]["kind"] == "Pod"
    assert cluster.create(POD)["metadata"]["name"] == "p"
    cluster.delete("Pod", "p", "ns")
    methods = [(m, p) for m, p, _, _ in Api.requests]
    assert ("POST", "/api/v1/namespaces/ns/pods") in methods and ("DELETE", "/api/v1/namespaces/ns/pods/p") in methods
    listing = next(q for m, p, q, _ in Api.requests if m == "GET" and p == "/api/v1/namespaces/ns/pods")
    assert listing["labelSelector"] == ["a=b"]
    created = next(b for m, p, _, b in Api.requests if m == "POST")
    assert created == POD


def test_errors_become_api_errors(cluster: KubeCluster) -> None:
    assert cluster.get("SpiderIPPool", "missing") is None  # 404 on get means absent
    with pytest.raises(ApiError) as err:
        cluster.list("Pod", "busy")
    assert err.value.status == 429 and err.value.transient


def test_unreachable_cluster_is_a_transient_api_error(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9", {})  # nothing listens there
    with pytest.raises(ApiError) as err:
        KubeCluster(kubeconfig).server_version()
    assert err.value.status == 0 and err.value.transient


def test_forbidden_names_the_verb_and_resource_and_the_rbac_file(cluster: KubeCluster) -> None:
    with pytest.raises(ApiError) as err:
        cluster.create({**POD, "metadata": {**POD["metadata"], "namespace": "locked"}})
    assert err.value.status == 403 and not err.value.transient
    assert "forbidden to create pods in namespace locked" in str(err.value)
    assert "validators/rbac.yaml" in str(err.value)
    with pytest.raises(ApiError) as err:
        cluster.list("SpiderIPPool", label_selector="locked=yes")
    assert "forbidden to list spiderippools.spiderpool.spidernet.io: grant" in str(err.value)


# -- exec over a real websocket on 127.0.0.1 ---------------------------------------------------------------------------

PING_HEADER = b"PING 198.18.0.2 (198.18.0.2) 56(84) bytes of data.\n"
FLOOD_FRAME = 65535 - 1  # the largest payload a 16-bit frame length carries, less the channel byte


class ExecApi(BaseHTTPRequestHandler):
    """The API server's side of an exec: the websocket upgrade (RFC 6455 section 4.2.2), with the subprotocol
    negotiated and the frames written by the lab's websocket module (tests/lab/websocket.py, which cites both
    servers); the empty stdout message sent once connected, then the command's output on channel 1 and the
    metav1.Status on channel 3 (kubelet pkg/cri/streaming/remotecommand/websocket.go, createWebSocketStreams;
    v4WriteStatusFunc). With `hang` the command prints its first line and never ends until the client closes (its
    frames read by the lab's Channels.receive); otherwise it prints and exits 0 (the Success status, then a close
    frame)."""

    rbufsize = 0  # unbuffered: the client's frames after the handshake stay in the socket for Channels.receive
    hang: ClassVar[bool] = True
    flood: ClassVar[int] = 0  # MiB of stdout the command prints before it ends (in frames of FLOOD_FRAME bytes)
    release: ClassVar[threading.Event] = threading.Event()  # the test is over: a hanging command's stream ends
    commands: ClassVar[list[list[str]]] = []

    def do_GET(self) -> None:
        self.close_connection = True
        ExecApi.commands.append(parse_qs(urlparse(self.path).query)["command"])
        protocol = websocket.negotiate(self.headers.get("Sec-WebSocket-Protocol", ""))
        assert protocol is not None, self.headers["Sec-WebSocket-Protocol"]
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", websocket.accept_key(self.headers["Sec-WebSocket-Key"]))
        self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.channels = websocket.Channels(self.connection, protocol)
        self.channels.write(websocket.STDOUT, b"")
        if ExecApi.hang:  # the stream ends when the client closes it (its exec timed out) or the test is over
            self.channels.write(websocket.STDOUT, PING_HEADER)
            threading.Thread(target=self.channels.receive, daemon=True).start()
            while not (self.channels.client_closed.wait(0.1) or ExecApi.release.is_set()):
                continue
            self.channels.close()
            return
        for _ in range(ExecApi.flood_bytes() // FLOOD_FRAME):
            self.channels.write(websocket.STDOUT, b"y" * FLOOD_FRAME)
        self.channels.write(websocket.STDOUT, f"done\n{EXIT_MARKER}0\n".encode())
        self.channels.write(websocket.ERROR, b'{"metadata":{},"status":"Success"}')
        self.channels.close()

    @staticmethod
    def flood_bytes() -> int:
        return ExecApi.flood * 2**20 // FLOOD_FRAME * FLOOD_FRAME

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def exec_api(tmp_path: Path) -> Iterator[KubeCluster]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ExecApi)
    server.daemon_threads = True
    ExecApi.hang, ExecApi.flood, ExecApi.commands = True, 0, []
    ExecApi.release.clear()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{server.server_port}", {"token": "t"})
    try:
        yield KubeCluster(kubeconfig)
    finally:
        ExecApi.release.set()
        server.shutdown()
        server.server_close()


def bounded(fn: Any, seconds: float) -> Any:
    """fn() in a thread, given `seconds` to return: an exec that ignores its timeout fails the test, not hangs it."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(fn)
        try:
            return future.result(timeout=seconds)
        except FuturesTimeout:
            ExecApi.release.set()  # end the stream: the thread can finish
            raise AssertionError(f"still running after {seconds}s") from None


def test_exec_reads_output_and_exit_code_over_the_websocket(exec_api: KubeCluster) -> None:
    """The double answers as the API does: the client's own exec reads it to the end (what the test below relies on)."""
    ExecApi.hang = False
    result = bounded(lambda: exec_api.exec("ns", "p", ["true"], timeout=10), 15)
    assert (result.exit_code, result.stdout, result.timed_out) == (0, "done\n", False)
    assert ExecApi.commands[0][:2] == ["sh", "-c"]


def test_exec_of_a_command_that_hangs_ends_at_its_timeout(exec_api: KubeCluster) -> None:
    start = time.monotonic()
    result = bounded(lambda: exec_api.exec("ns", "p", ["ping", "198.18.0.2"], timeout=2), 12)
    elapsed = time.monotonic() - start
    # Its timeout at least; the bound above it is loose on purpose (a busy machine), and `bounded` fails an exec
    # that ignores its timeout at 12 s.
    assert 2 <= elapsed < 8, elapsed
    assert result.timed_out and result.exit_code is None
    assert result.stdout == PING_HEADER.decode() and "(timed out)" in result.stderr


def test_a_probe_whose_command_hangs_ends_at_the_exec_timeout_with_that_reason(exec_api: KubeCluster) -> None:
    """Not "the exit code was lost" (a transient failure, retried: four times the timeout): one attempt, failed,
    saying it timed out."""
    params = Parameters(probe_timeout=1, retry_delay=0.1)
    ctx = RunContext(exec_api, params, "run", "ns")
    src = PodInfo("p", "client", "node-0", "198.18.0.1", "10.0.0.1")
    timeout = params.probe_timeout * 4 + 5  # what actions gives the exec of a probe
    start = time.monotonic()
    result = bounded(lambda: execute(ctx, "connectivity", actions.ping(ctx, src, "q", "198.18.0.2")), 4 * timeout)
    assert time.monotonic() - start < 2 * timeout  # one attempt; four (the transient-failure retries) take 4x
    assert (result.status, result.attempts) == (Status.FAIL, 1), result.detail
    assert result.detail == f"ping did not finish within {timeout}s: its exec was ended at the timeout"
    assert result.data["exec"]["stdout"] == PING_HEADER.decode()


def test_exec_keeps_the_last_mebibyte_of_an_output_without_end(exec_api: KubeCluster) -> None:
    """A command that prints 32 MiB: the client never holds more than the tail that exec keeps (before: all of it
    twice, in the WSClient's own capture and in exec's list)."""
    import tracemalloc

    from spider_validate.cluster.kube import EXEC_OUTPUT_LIMIT

    ExecApi.hang, ExecApi.flood = False, 32
    tracemalloc.start()
    try:
        result = bounded(lambda: exec_api.exec("ns", "p", ["yes"], timeout=60), 90)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0 and result.stdout.endswith("y" * 10 + "done\n")
    assert len(result.stdout) < EXEC_OUTPUT_LIMIT
    printed = ExecApi.flood_bytes() + len(f"done\n{EXIT_MARKER}0\n")
    assert f"(stdout: the first {printed - EXEC_OUTPUT_LIMIT} characters dropped, the last" in result.stderr
    assert peak < 16 * EXEC_OUTPUT_LIMIT, f"peak {peak / 2**20:.0f} MiB"


# -- real sockets on 127.0.0.1: a refused port, a listener that never answers, an API that hangs ------------------

SCRIPT = Path(sys.executable).with_name("spider-validate")  # the installed entry point of this environment


class HangingApi(BaseHTTPRequestHandler):
    """Answers /version (so the run starts) and nothing else: every other request waits until the test ends."""

    release: ClassVar[threading.Event] = threading.Event()
    blocked: ClassVar[threading.Event] = threading.Event()  # a client waits in a call that will not be answered

    def do_GET(self) -> None:
        if self.path == "/version":
            body = json.dumps({"gitVersion": "v1.33.2"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        HangingApi.blocked.set()
        HangingApi.release.wait(120)

    def log_message(self, *args: object) -> None:
        pass


class HtmlPage(BaseHTTPRequestHandler):
    """A web server where the API server should be (a wrong local port): 200 with an HTML page."""

    def do_GET(self) -> None:
        body = b"<html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Unauthorized(BaseHTTPRequestHandler):
    """An API server that rejects the token: what kube-apiserver's authentication filter answers
    (k8s.io/apiserver/pkg/endpoints/filters/authentication.go, Unauthorized: apierrors.NewUnauthorized
    ("Unauthorized") written as a Status)."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "Unauthorized",
                "reason": "Unauthorized",
                "code": 401,
            }
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    HangingApi.release.clear()
    HangingApi.blocked.clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        HangingApi.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connecting is refused


class SilentServer:
    """A listener that reads a request and never answers: `waited` is how long the client waited from its first
    byte until it closed the connection (its read timeout, measured where it happens, whatever the start-up)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(60)
        self.port = int(self.sock.getsockname()[1])
        self.waited: float | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(60)
            first = None
            try:
                while conn.recv(65536):
                    first = first or time.monotonic()
            except OSError:
                return
            if first is not None:
                self.waited = time.monotonic() - first


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.sock.close()
        server.thread.join(5)


def spider_validate(tmp_path: Path, port: int, *args: str) -> subprocess.Popen[str]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}", {"token": "secret"})
    return subprocess.Popen(
        [str(SCRIPT), *args, "--kubeconfig", kubeconfig],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_up(tmp_path: Path) -> float:
    """Seconds the CLI takes to start and load the kubernetes client here and now (the machine may be busy):
    what the bounds below come on top of."""
    start = time.monotonic()
    proc = subprocess.run(
        [str(SCRIPT), "cleanup", "--kubeconfig", str(tmp_path / "missing")], capture_output=True, timeout=60
    )
    assert proc.returncode == 2
    return time.monotonic() - start


def interrupt_once_blocked(proc: subprocess.Popen[str]) -> None:
    """SIGINT once the command waits in an API call that the server will never answer."""
    assert HangingApi.blocked.wait(60)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str, float]:
    start = time.monotonic()
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err, time.monotonic() - start


@pytest.mark.parametrize("command", [["run", "--diagnostics-dir", "diag"], ["cleanup"], ["audit"]])
def test_connection_refused_is_one_line_naming_the_server_within_a_second(
    tmp_path: Path, closed_port: int, command: list[str]
) -> None:
    base = start_up(tmp_path)
    start = time.monotonic()
    code, out, err, _ = finish(spider_validate(tmp_path, closed_port, *command))
    elapsed = time.monotonic() - start - base
    assert code == 3 and out == ""
    server = f"http://127.0.0.1:{closed_port}"
    assert err.splitlines() == [f"Error: cannot reach the API server {server}: connection refused"]
    # Beyond start-up: measured -0.3 to +0.2 s on a quiet machine; the bound leaves room for a busy one and still
    # fails a client that waits out a connect timeout (5 s) or retries with backoff.
    assert elapsed < 4, elapsed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kubeconfig"]  # no diagnostics folder


def test_a_server_that_never_answers_fails_after_the_read_timeout(tmp_path: Path, silent_server: SilentServer) -> None:
    port, base = silent_server.port, start_up(tmp_path)
    code, _, err, wall = finish(spider_validate(tmp_path, port, "run", "--api-timeout", "1"))
    assert code == 3
    assert err.splitlines() == [f"Error: API server http://127.0.0.1:{port}: no answer to get version within 1s"]
    silent_server.thread.join(10)
    # The wait is measured at the server, from the request's first byte to the client's close, so the client's
    # start-up (which varies by more than its own length on a busy machine) is not in it. At least the 1 s read
    # timeout; the default (30 s) or a retry of the read (a second request: 2 s and more) would exceed the loose
    # upper bound that a busy machine needs.
    assert silent_server.waited is not None and 0.95 <= silent_server.waited < 1 + 4, silent_server.waited
    assert wall - base < 1 + 4, (wall, base)  # and no second request after it (the server never accepts one)


def test_an_html_page_where_the_api_should_be_is_a_clear_error(tmp_path: Path) -> None:
    with serving(HtmlPage) as port:
        code, _, err, _ = finish(spider_validate(tmp_path, port, "cleanup"))
    assert code == 2
    assert f"http://127.0.0.1:{port} answered get version with something that is not JSON" in err
    assert "'<html><body>Welcome</body></html>'" in err and len(err.splitlines()) == 1


def test_rejected_credentials_name_the_server_the_kubeconfig_and_what_to_do(tmp_path: Path) -> None:
    """It said `Error: 401: Unauthorized`, naming neither the server nor the credentials' file."""
    with serving(Unauthorized) as port:
        code, _, err, _ = finish(spider_validate(tmp_path, port, "cleanup"))
    assert code == 2
    assert err.startswith(
        f"Error: the API server http://127.0.0.1:{port} refused the credentials of kubeconfig "
        f"{tmp_path / 'kubeconfig'} (Unauthorized): they are wrong or expired. Fetch the kubeconfig again"
    ), err


def test_the_runs_deadline_holds_while_an_api_call_blocks(tmp_path: Path) -> None:
    """Every call after /version hangs (up to the 60 s read timeout): --timeout 3 still ends the run."""
    base = start_up(tmp_path)
    with serving(HangingApi) as port:
        proc = spider_validate(
            tmp_path, port, "run", "--api-timeout", "60", "--timeout", "3", "--cleanup-timeout", "2", "-o", "json",
            "--junit-file", "report.xml",
        )  # fmt: skip
        code, out, err, elapsed = finish(proc)
    assert code == 1, err
    report = json.loads(out)
    assert report["timed_out"] is True and report["passed"] is False
    statuses = {t["id"] if "id" in t else f"{t['suite']}/{t['name']}": t["status"] for t in report["tests"]}
    assert statuses.pop("preflight/cluster-reachable") == "pass"  # /version answers; the CRD list never does
    assert set(statuses.values()) == {"error"}
    assert "the run's timeout (3s) expired" in report["tests"][1]["reason"]
    # Deadline, grace, diagnostics, cleanup (3 + 2 + 2 + 2 s; 7.4-7.8 s wall on a quiet machine), with room for a
    # busy one, far below the 60 s of the call that blocks.
    assert elapsed - base < 3 + 2 + 2 + 2 + 10, elapsed
    assert (tmp_path / "report.xml").read_text().count("<error") == len(report["tests"]) - 1


@pytest.mark.parametrize("command", [["run", "--timeout", "60"], ["audit"], ["cleanup"]])
def test_first_ctrl_c_is_acknowledged_and_exits_130(tmp_path: Path, command: list[str]) -> None:
    with serving(HangingApi) as port:
        proc = spider_validate(tmp_path, port, *command, "--api-timeout", "60")
        interrupt_once_blocked(proc)  # in a call that would last 60 s
        code, _, err, elapsed = finish(proc)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    # run: up to 2 s for the call in flight, then cleanup; audit, cleanup: at once. Loose for a busy machine, far
    # below the 60 s call that a missed Ctrl-C would wait out.
    assert elapsed < 12, elapsed


def test_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    with serving(HangingApi) as port:
        proc = spider_validate(tmp_path, port, "run", "--api-timeout", "60", "--timeout", "60")
        interrupt_once_blocked(proc)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        code, _, err, elapsed = finish(proc)
    assert code == 130
    assert "interrupted: stopping and cleaning up (Ctrl-C again to exit at once)" in err
    assert "forced exit: the run's resources may remain; `spider-validate cleanup` removes them" in err
    assert elapsed < 1.5, elapsed  # at once: the first Ctrl-C's path waits 2 s for the call in flight
