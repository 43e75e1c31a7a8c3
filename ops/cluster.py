"""The cluster phase: wait for control-plane-0 to publish the admin kubeconfig in SSM, reach the private API the way
the README tells users (an SSM port-forwarding session, or directly from an `admin_cidr` network), and wait until
every planned node has joined (NotReady is expected: the pod network comes with the chart)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError
from spider_validate import names
from spider_validate.cluster import kubeconfig as kc
from spider_validate.cluster.api import Timeouts
from spider_validate.cluster.kube import KubeCluster

POLL = 15.0  # seconds between looks at SSM and the API: each is one request, and bootstrap takes minutes


class ClusterNotReady(Exception):
    """A deadline of the cluster phase passed: the message says what was still missing."""


def wait_for_kubeconfig(
    ssm: Any,
    cluster: str,
    region: str,
    echo: Callable[[str], None],
    timeout: float,
    progress: Callable[[], dict[str, str]] = dict,
) -> Any:
    """The kubeconfig once control-plane-0 replaced the placeholder the stack created, saying meanwhile which step
    each node's bootstrap is at (`progress`); kc.KubeconfigError at once for what waiting does not fix (access
    denied, no such parameter)."""
    name = names.ssm_parameter(cluster, names.KUBECONFIG)
    start = time.monotonic()
    while True:
        try:
            value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except ClientError:
            value = None  # fetch below raises its own explanation
        if value is None or value.strip() != names.PLACEHOLDER:
            return kc.fetch(ssm, cluster, region)
        waited = time.monotonic() - start
        if waited > timeout:
            raise ClusterNotReady(
                f"{names.FIRST_CONTROL_PLANE} has not published the kubeconfig after {waited:.0f} s: see README, "
                "Troubleshooting (its bootstrap log: /var/log/spiderpool-rdma/ on the node, through SSM)"
            )
        echo(f"  waiting for {names.FIRST_CONTROL_PLANE} to publish the kubeconfig ({waited:.0f} s)")
        for node, step in sorted(progress().items()):
            echo(f"    {node}: {step}")
        time.sleep(POLL)


def write_private(path: Path, config: Any) -> None:
    """Create or replace `path` with mode 0600 (the admin credential), renamed over whatever was there."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        out.write(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, path)


#: What the Session Manager plugin prints once it listens on the local port (aws/session-manager-plugin
#: src/sessionmanagerplugin/session/portsession/muxportforwarding.go:249, basicportforwarding.go:158).
OPENED = "Port {port} opened for sessionId"


@contextlib.contextmanager
def port_forward(region: str, instance_id: str, port: int, timeout: float = 60.0) -> Iterator[None]:
    """`aws ssm start-session` forwarding localhost:port to the API, for as long as the block runs.

    Open once the plugin says it listens, not when something answers on the port: another program's listener (a
    local cluster's 6443) would. Closed as Ctrl-C closes it, whatever ended the block: SIGINT to the session's
    process group, which the plugin takes as the signal to end its session with the agent (its ControlSignals),
    while the AWS CLI ignores it and exits with its plugin; SIGTERM would end the CLI alone and leave the plugin
    forwarding. What still runs after 10 s is killed."""
    command = shlex.split(kc.port_forward_command(region, instance_id, port))
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    output: list[str] = []
    opened = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if OPENED.format(port=port) in line:
                opened.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + timeout
        while not opened.wait(0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                said = " ".join(line.strip() for line in output if line.strip())
                raise ClusterNotReady(
                    f"the SSM port forward to {instance_id} did not open localhost:{port} "
                    f"({said or 'it said nothing'}); it needs the AWS CLI's Session Manager plugin (README, "
                    "Prerequisites), and the port free"
                )
        yield
    finally:
        _end_session(process)


def _end_session(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # whatever of the session's group is left
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass(frozen=True)
class NodeState:
    """A registered node as the API reports it: its Ready condition's status and its kubelet's version."""

    name: str
    ready: str
    version: str


def node_states(kubeconfig: Path) -> list[NodeState]:
    """Every registered node, through the validator's client (each call bounded, failures as ApiError naming the
    server: a dead port forward is one line, in seconds)."""
    api = KubeCluster(str(kubeconfig), None, Timeouts(5.0, 10.0))
    return [
        NodeState(
            node["metadata"]["name"],
            next((c["status"] for c in status.get("conditions", []) if c["type"] == "Ready"), "Unknown"),
            (status.get("nodeInfo") or {}).get("kubeletVersion", "unknown"),
        )
        for node in api.list("Node")
        for status in [node.get("status", {})]
    ]


def wait_for_nodes(
    kubeconfig: Path, expected: list[str], echo: Callable[[str], None], timeout: float
) -> dict[str, str]:
    """Every planned node registered with the API (node name -> its Ready condition's status)."""
    start = time.monotonic()
    while True:
        # kubeadm registers each node by its planned name (bootstrap/kubeadm-init.yaml.j2, nodeRegistration.name)
        joined = {node.name: node.ready for node in node_states(kubeconfig)}
        missing = sorted(set(expected) - set(joined))
        if not missing:
            return joined
        waited = time.monotonic() - start
        if waited > timeout:
            raise ClusterNotReady(f"after {waited:.0f} s these nodes have not joined: {', '.join(missing)}")
        echo(f"  {len(expected) - len(missing)}/{len(expected)} nodes joined; waiting for {', '.join(missing)}")
        time.sleep(POLL)


#: A bootstrap step's line as bootstrap/lib.sh's `log` writes it to the unit's stderr, which
#: spiderpool-rdma-bootstrap.service sends to the console too (StandardError=journal+console): the serial console
#: that ec2:GetConsoleOutput returns, so that progress needs no write right on the nodes.
STEP_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) \[([\w.-]+)\] (start|done|already done|FAILED: .*)$")


def bootstrap_step(console: str) -> str:
    """Where a node's bootstrap is, from its console output: its last step line, or "not started"."""
    last = None
    for line in console.splitlines():
        if match := STEP_LINE.search(line.rstrip()):
            last = match
    if last is None:
        return "not started"
    at, step, what = last.groups()
    return f"{step} {'failed' + what.removeprefix('FAILED') if what.startswith('FAILED') else what} ({at[11:19]})"


def bootstrap_progress(ec2: Any, cluster: str) -> dict[str, str]:
    """Each running node of the cluster (by its name tag) -> its bootstrap step, from the console's latest output."""
    reply = ec2.describe_instances(
        Filters=[
            {"Name": f"tag:{names.CLUSTER_TAG}", "Values": [cluster]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )
    progress = {}
    for instance in (i for r in reply["Reservations"] for i in r["Instances"]):
        node = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}.get(names.NODE_TAG, instance["InstanceId"])
        # the API's base64, decoded by botocore already (botocore/handlers.py, decode_console_output)
        progress[node] = bootstrap_step(
            ec2.get_console_output(InstanceId=instance["InstanceId"], Latest=True).get("Output") or ""
        )
    return progress
