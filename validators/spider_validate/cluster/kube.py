"""The `Cluster` interface on the official `kubernetes` client: the only code that knows about the Kubernetes API.

Every call is bounded and every failure becomes an `ApiError`; what it returns is plain data (`api.py`).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from spider_validate.cluster.api import (
    CRD_PATH,
    KINDS,
    RBAC_FILE,
    ApiError,
    ConfigProblem,
    ExecResult,
    Timeouts,
    resource_path,
    unwrap_output,
    wrap_command,
)

DEFAULT_KUBECONFIG = "~/.kube/config"
# Characters of stdout and of stderr an exec keeps, the last ones (where the exit marker and the summaries the
# parsers read are): a command that prints without end costs at most this much memory.
EXEC_OUTPUT_LIMIT = 1024 * 1024


class Tail:
    """The last `limit` characters of a stream read in chunks, and how many were dropped before them."""

    def __init__(self, limit: int = EXEC_OUTPUT_LIMIT) -> None:
        self.limit, self.size, self.dropped = limit, 0, 0
        self._parts: deque[str] = deque()

    def add(self, text: str) -> None:
        self._parts.append(text)
        self.size += len(text)
        while self.size > self.limit:
            excess, first = self.size - self.limit, self._parts[0]
            if len(first) <= excess:
                self._parts.popleft()
                cut = len(first)
            else:
                self._parts[0], cut = first[excess:], excess
            self.size -= cut
            self.dropped += cut

    def text(self) -> str:
        return "".join(self._parts)

    def note(self, name: str) -> str:
        """What was dropped, for the exec's stderr (empty when nothing was)."""
        if not self.dropped:
            return ""
        return f"\n({name}: the first {self.dropped} characters dropped, the last {self.limit} kept)"


def read_kubeconfig(path: str) -> dict[str, Any]:
    """One kubeconfig file as a mapping; ConfigProblem naming the file when it is missing or not one."""
    try:
        raw = Path(path).expanduser().read_bytes()
    except FileNotFoundError as exc:
        raise ConfigProblem(
            f"kubeconfig {path} does not exist: write one with `spider-validate kubeconfig --cluster NAME "
            "--region REGION`, or pass --kubeconfig FILE"
        ) from exc
    except OSError as exc:
        raise ConfigProblem(f"kubeconfig {path} cannot be read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigProblem(f"kubeconfig {path} is not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigProblem(f"kubeconfig {path} is not valid YAML{line}") from exc
    if data is None:
        raise ConfigProblem(f"kubeconfig {path} is empty: write one with `spider-validate kubeconfig`, or pass another")
    if not isinstance(data, dict):
        raise ConfigProblem(
            f"kubeconfig {path} holds a {type(data).__name__}, not a kubeconfig (a mapping: clusters, contexts, users)"
        )
    return data


class KubeCluster:
    """Cluster on the official client; ApiException becomes ApiError, exec reads the exit marker.

    Every call is bounded by `timeouts` (connect, read) and never retried by urllib3: the callers decide.
    """

    def __init__(
        self, kubeconfig: str | None = None, context: str | None = None, timeouts: Timeouts | None = None
    ) -> None:
        import websocket
        from kubernetes import client, config

        self.timeouts = timeouts or Timeouts()
        configuration = client.Configuration()
        paths = [p for p in (kubeconfig or "").split(os.pathsep) if p]
        #: where the credentials came from, for messages that must say which to fix
        self.source = f"kubeconfig {os.pathsep.join(paths or [DEFAULT_KUBECONFIG])}"
        if not paths and os.environ.get("KUBERNETES_SERVICE_HOST"):
            self.source = "the in-cluster service account"
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException as exc:
                raise ConfigProblem(f"in-cluster configuration: {exc}") from exc
        else:
            paths = paths or [DEFAULT_KUBECONFIG]
            for path in paths:
                read_kubeconfig(path)
            try:
                config.load_kube_config(
                    config_file=os.pathsep.join(os.path.expanduser(p) for p in paths),
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            except Exception as exc:  # the loader raises ConfigException, ValueError, binascii.Error, KeyError...
                raise ConfigProblem(f"kubeconfig {os.pathsep.join(paths)}: {exc or type(exc).__name__}") from exc
        configuration.retries = False
        self.server = configuration.host
        websocket.setdefaulttimeout(self.timeouts.read)  # exec's websocket: kubernetes.stream passes none
        self._api = client.ApiClient(configuration)
        # exec's own client: kubernetes.stream swaps its client's `request` for a websocket's while an exec connects
        # (stream.py, _websocket_request), so a call another thread made through a shared client meanwhile would go
        # out as a websocket handshake ("Handshake status 200 OK")
        self._exec_api = client.ApiClient(configuration)

    @functools.cached_property
    def _core(self) -> Any:
        """The generated CoreV1Api, for watch and logs only: from client 37 on, its import builds some 250
        pydantic models (0.6 s here), which a CLI that finds no API server should not wait for."""
        from kubernetes import client

        return client.CoreV1Api(self._api)

    @functools.cached_property
    def _exec_core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self._exec_api)

    @property
    def _bounds(self) -> tuple[float, float]:
        return (self.timeouts.connect, self.timeouts.read)

    def _call(self, verb: str, resource: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            if exc.status == 401:  # at any call (a token that expired during a run): whose, and what to do
                raise ApiError(401, self._refused(_status_message(exc) or exc.reason or "Unauthorized")) from exc
            if exc.status == 403:
                raise ApiError(
                    403, f"forbidden to {verb} {resource}: grant what {RBAC_FILE} lists (kubectl apply -f {RBAC_FILE})"
                ) from exc
            raise ApiError(exc.status or 0, _status_message(exc) or exc.reason or str(exc)) from exc
        except NewConnectionError as exc:  # first: urllib3 makes it a ConnectTimeoutError too
            reason = "connection refused" if "refused" in str(exc).lower() else str(exc).split(": ", 1)[-1]
            raise ApiError(0, f"cannot reach the API server {self.server}: {reason}") from exc
        except ConnectTimeoutError as exc:
            raise ApiError(0, f"API server {self.server}: no connection within {self.timeouts.connect:g}s") from exc
        except ReadTimeoutError as exc:
            raise ApiError(
                0, f"API server {self.server}: no answer to {verb} {resource} within {self.timeouts.read:g}s"
            ) from exc
        except (HTTPError, OSError) as exc:
            raise ApiError(0, f"cannot reach the API server {self.server}: {exc}") from exc

    def _refused(self, reason: str) -> str:
        return (
            f"the API server {self.server} refused the credentials of {self.source} ({reason}): they are wrong or "
            "expired. Fetch the kubeconfig again (`spider-validate kubeconfig --cluster NAME --region REGION`), or "
            "name another with --kubeconfig/--context"
        )

    def _resource(self, kind: str, namespace: str | None, sub: str = "") -> str:
        """How RBAC names it: `pods/exec in namespace x`, `spiderippools.spiderpool.spidernet.io`."""
        api_version, plural, namespaced = KINDS[kind]
        group = api_version.rpartition("/")[0]
        name = f"{plural}.{group}" if group else plural
        return name + (f"/{sub}" if sub else "") + (f" in namespace {namespace}" if namespaced and namespace else "")

    def _send(self, method: str, path: str, body: Any, query: list[tuple[str, Any]]) -> bytes:
        """One request through the client's own serialization and authentication; the response body.

        The generated client changed shape twice: 36 replaced `call_api`'s `response_type` with
        `response_types_map`, and 37 (a new generator) split it into `param_serialize`, `call_api` and
        `response_deserialize`. Both go the way the client's own `DynamicClient.request` goes in that release
        (kubernetes/dynamic/client.py): the raw response, never the generated deserializer, so the body is read here.
        """
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        api: Any = self._api  # one generation's type hints do not describe the other's
        if hasattr(api, "param_serialize"):  # 37 and later
            request = api.param_serialize(
                method, path, query_params=query, header_params=headers, body=body, auth_settings=["BearerToken"]
            )
            response = api.call_api(*request, _request_timeout=self._bounds)
            response.read()
            if not 200 <= response.status <= 299:  # 37's call_api returns every status
                raise ApiException(http_resp=response)
            return bytes(response.data)
        response = api.call_api(  # up to 36: raises ApiException on a status outside 2xx itself
            path,
            method,
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=self._bounds,
        )
        return bytes(response.data)

    def _request(
        self,
        verb: str,
        resource: str,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, Any]] | None = None,
    ) -> Any:
        raw = self._call(verb, resource, self._send, method, path, body, query or [])
        try:
            data = json.loads(raw)
        except ValueError:
            data = raw.decode("utf-8", "replace")
        if not isinstance(data, dict):
            raise ApiError(
                0,
                f"{self.server} answered {verb} {resource} with something that is not JSON ({str(data)[:60]!r}): "
                "is it a Kubernetes API server (the port forward's local port)?",
                transient=False,
            )
        return data

    def server_version(self) -> str:
        data = self._request("get", "version", "GET", "/version")
        return str(data.get("gitVersion", "unknown"))

    def crd_names(self) -> set[str]:
        data = self._request("list", "customresourcedefinitions", "GET", CRD_PATH)
        return {item["metadata"]["name"] for item in data.get("items", [])}

    def list(self, kind: str, namespace: str | None = None, label_selector: str = "") -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        items = self._request(
            "list", self._resource(kind, namespace), "GET", resource_path(kind, namespace), query=query
        ).get("items", [])
        return [{"kind": kind, **item} for item in items]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            path = resource_path(kind, namespace, name)
            return dict(self._request("get", self._resource(kind, namespace), "GET", path))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj["metadata"].get("namespace")
        kind = obj["kind"]
        return dict(
            self._request("create", self._resource(kind, namespace), "POST", resource_path(kind, namespace), body=obj)
        )

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        try:
            self._request(
                "delete",
                self._resource(kind, namespace),
                "DELETE",
                resource_path(kind, namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except ApiError as exc:
            if exc.status != 404:
                raise

    def watch(
        self, kind: str, namespace: str, label_selector: str, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        from kubernetes import watch

        assert kind == "Pod", "spider-validate only watches pods"
        w = watch.Watch()
        stream = w.stream(
            self._core.list_namespaced_pod,
            namespace,
            label_selector=label_selector,
            timeout_seconds=timeout_seconds,
            _request_timeout=(self.timeouts.connect, timeout_seconds + self.timeouts.read),
        )
        resource = self._resource("Pod", namespace)
        try:
            while True:
                try:
                    event = self._call("watch", resource, _next_event, stream)
                except ApiError:
                    raise
                except Exception as exc:  # a broken stream: the caller lists again
                    raise ApiError(0, f"watch dropped: {exc}") from exc
                if event is None:
                    return
                yield event["type"], self._api.sanitize_for_serialization(event["object"])
        finally:
            w.stop()

    def exec(self, namespace: str, pod: str, command: Sequence[str], timeout: float) -> ExecResult:
        """Run `command` in the pod, keeping the last EXEC_OUTPUT_LIMIT characters of stdout and of stderr.

        `kubernetes.stream.stream` makes a WSClient that also copies everything it receives into a buffer of its
        own (`capture_all`, which no argument of stream() turns off): the same request function with
        capture_all=False, so that only the bounded tails below hold the output (kubernetes/stream/stream.py,
        `_websocket_request`; ws_client.py, `websocket_call`, in every client this package accepts).

        From client 36 on, WSClient.update() goes on reading while `_frames_immediately_available()` says another
        frame waits (ws_client.py, the end of `update`), appending each to its channel's buffer: a command that
        prints faster than we read would have update() hold all of it. That check answers False on this client,
        so update() reads one frame per call, as the clients before 36 do, and the tails below see every frame.
        """
        from kubernetes.stream import ws_client

        streams = importlib.import_module("kubernetes.stream.stream")  # the package's `stream` is the function
        uncaptured = functools.partial(ws_client.websocket_call, capture_all=False)
        stream = functools.partial(streams._websocket_request, uncaptured, None)
        resp = self._call(
            "create",
            self._resource("Pod", namespace, "exec"),
            stream,
            self._exec_core.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=wrap_command(command),
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
        resp._frames_immediately_available = lambda: False
        deadline = time.monotonic() + timeout
        out, err = Tail(), Tail()
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=1)
            if resp.peek_stdout():
                out.add(resp.read_stdout())
            if resp.peek_stderr():
                err.add(resp.read_stderr())
        timed_out = resp.is_open()
        resp.close()
        status = None if timed_out else _exit_status(resp)
        code, stdout = unwrap_output(out.text(), status)
        stderr = err.text() + out.note("stdout") + err.note("stderr") + ("\n(timed out)" if timed_out else "")
        return ExecResult(code, stdout, stderr, timed_out)

    def logs(self, namespace: str, pod: str) -> str:
        return str(
            self._call(
                "get",
                self._resource("Pod", namespace, "log"),
                self._core.read_namespaced_pod_log,
                pod,
                namespace,
                tail_lines=200,
                _request_timeout=self._bounds,
            )
        )


def _next_event(stream: Iterator[Any]) -> Any:
    """The watch's next event (None at its end). A stream that breaks once the server answered was dropped, not
    unreachable: urllib3's ProtocolError ("Response ended prematurely") said as much."""
    from urllib3.exceptions import ProtocolError

    try:
        return next(stream, None)
    except ProtocolError as exc:
        raise ApiError(0, f"watch dropped: {exc}") from exc


def _exit_status(resp: Any) -> int | None:
    """The exit code the error channel's Status carries, or None when the channel never came (the websocket closed
    before it: the client's `returncode` then fails on the empty channel) or holds no exit code; the command's exit
    marker tells it then (unwrap_output)."""
    try:
        return int(resp.returncode)
    except (TypeError, KeyError, IndexError, ValueError):
        return None


def _status_message(exc: Any) -> str:
    """The message of the metav1.Status an API server answers a failed call with (an admission webhook's denial, a
    validation error), which the client's ApiException keeps in `body` and its `reason` (the HTTP reason phrase,
    "Internal Server Error") leaves out; empty when the body is not a Status."""
    try:
        body = json.loads(exc.body or b"")
    except (TypeError, ValueError):
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) and body.get("kind") == "Status" else ""
