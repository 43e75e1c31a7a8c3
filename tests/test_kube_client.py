"""KubeCluster, the real `kubernetes` client code path, against a minimal API server on 127.0.0.1.

The server answers the few paths spider-validate reads and creates, in the API's JSON shapes; it checks
that the client sends what the API expects (methods, paths, label selectors, bodies) and maps errors.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from spider_validate.kube import ApiError, KubeCluster

POD = {
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
