"""Network namespaces, links and processes that the lab creates, and their removal (also after a crash).

Everything is named with the lab's prefix, and each prefix is owned by the process that created it: an
exclusive flock(2) on OWNERS/<prefix>.lock, which the kernel drops when that process dies, however it dies. A
test session's sweep removes only prefixes whose owner is gone; another live run's namespaces are never touched.
Addresses come from 198.18.0.0/15 (reserved for benchmarking) and exist only inside these namespaces,
which have no default route: no packet can leave them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

PREFIX = "svl"
CNI_BIN = Path("/usr/lib/cni")
OWNERS = Path("/run/spiderpool-rdma-lab")
NEIGHBOURS = Path("/proc/sys/net/ipv4/neigh/default")  # the IPv4 neighbour table's limits (initial namespace only)
# Room kept for the other runs on the machine: every lab of every helper and CI's at once, a 64-node scale run among
# them (its pods alone need about 4n^2 = 16,384 entries, scripts/bench_scale.py).
NEIGHBOURS_SHARED = 16384


class Owner:
    """Holds the lock that says `prefix` belongs to this live process (its PID is written in the file)."""

    def __init__(self, prefix: str) -> None:
        OWNERS.mkdir(parents=True, exist_ok=True)
        self.path = OWNERS / f"{prefix}.lock"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a clash of random prefixes raises here
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)


def owner_alive(prefix: str) -> bool | None:
    """True while the owner lives, False when it died, None when the prefix has no owner file (not ours)."""
    try:
        fd = os.open(OWNERS / f"{prefix}.lock", os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def sh(
    *args: str,
    ns: str | None = None,
    check: bool = True,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def add_netns(name: str) -> None:
    sh("ip", "netns", "add", name)
    sh("ip", "link", "set", "lo", "up", ns=name)


def delete_netns(name: str) -> None:
    """Kill every process still in the namespace, then delete it (its links go with it)."""
    pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    sh("ip", "netns", "del", name, check=False)


def neighbour_room(nodes: int) -> int:
    """Raise the kernel's IPv4 neighbour table limit to room for a lab of `nodes` beside the machine's other runs;
    never lower it. The table is one for every namespace of the kernel: the entries of all of them count against
    gc_thresh3, which only the initial namespace sets (1024 by default; net/core/neighbour.c neigh_alloc: past it,
    when a forced GC frees nothing, the entry is refused and `table_fulls` in /proc/net/stat/arp_cache counts it).
    A node of a real cluster has a kernel, so a table, of its own. When the machine's runs together filled this one,
    a pod asked for its address created no entry for the asker and so sent no ARP reply (net/ipv4/arp.c arp_process:
    the reply is sent only `if (n)` from neigh_event_ns), and a SYN-ACK found no neighbour: curl's "Couldn't connect"
    after the 3 probes' 3 s, or a connect timing out, until entries aged out. Lowering it again (as the scale
    benchmark restored it after its run) would set that trap for the runs still going, so the limit is a floor.
    Returns the limit in force."""
    need = NEIGHBOURS_SHARED + 4 * nodes * nodes
    limit = int((NEIGHBOURS / "gc_thresh3").read_text())
    if limit < need:
        for name, value in (("gc_thresh2", need // 2), ("gc_thresh3", need)):
            if int((NEIGHBOURS / name).read_text()) < value:
                (NEIGHBOURS / name).write_text(f"{value}\n")
        limit = need
    return limit


def lab_namespaces(prefix: str = PREFIX) -> list[str]:
    listing = sh("ip", "-j", "netns", "list", check=False).stdout.strip()
    names = [entry["name"] for entry in json.loads(listing or "[]")]
    return [n for n in names if n.startswith(prefix)]


def sweep(prefix: str) -> list[str]:
    """Remove the namespaces of one prefix (pods first, so their processes die before the nodes go)."""
    names = [n for n in lab_namespaces(prefix) if n.split("-")[0] == prefix]
    for name in sorted(names, key=lambda n: "-n" in n or "-fab" in n):
        delete_netns(name)
    return names


def sweep_dead() -> list[str]:
    """Remove what runs whose process is gone left behind; a live run's namespaces and untagged ones stay."""
    removed: list[str] = []
    for prefix in sorted({n.split("-")[0] for n in lab_namespaces()}):
        if owner_alive(prefix) is False:
            removed += sweep(prefix)
            with contextlib.suppress(FileNotFoundError):
                (OWNERS / f"{prefix}.lock").unlink()
    return removed


def cni(
    command: str, plugin: str, node_ns: str, pod_ns: str, container_id: str, ifname: str, config: dict[str, object]
) -> dict[str, object]:
    """Run a real CNI plugin by hand, inside the node's namespace (where its master link lives)."""
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": f"/var/run/netns/{pod_ns}",
        "CNI_IFNAME": ifname,
        "CNI_PATH": str(CNI_BIN),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    proc = sh(str(CNI_BIN / plugin), ns=node_ns, stdin=json.dumps(config), env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"CNI {plugin} {command} failed: {proc.stdout.strip()} {proc.stderr.strip()}")
    return dict(json.loads(proc.stdout)) if proc.stdout.strip() else {}


def wait_listening(ns: str, port: int, server: subprocess.Popen[bytes], timeout: float = 120.0) -> bool:
    """Whether `server`, a TCP server in the namespace, listens on `port` before it ends or the timeout passes (a
    generous one: a machine at load 100 takes seconds to start a Python server; 5 s was not always enough)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        if f":{port} " in sh("ss", "-ltnH", ns=ns, check=False).stdout:
            return True
        time.sleep(0.05)
    return False


def spawn(ns: str, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """A long-running process inside a namespace, in its own process group (killed with the namespace)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
