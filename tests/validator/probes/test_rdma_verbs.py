"""The verb and every perftest command rdma/bandwidth builds, checked against a model of perftest's option rules by
release (tests/upstream/perftest.py), against this machine's real perftest parser (Debian's 4.5+0.17, built with SRD:
the image scripts/build-rdma-tools-image.sh makes has the same), and the EFA generations' capabilities
(tests/upstream/efa.py). The lab has no RDMA stand-in: these models are it."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from spider_validate.actions import fabric as rdma_fabric
from spider_validate.actions import servers
from spider_validate.probes import perf as perf_probes
from spider_validate.probes import rdma as rdma_probes
from spider_validate.suites import rdma

from tests.upstream import efa, perftest

MODES = ("efa", "shared", "sriov", "softroce")


def real_parser(argv: list[str]) -> str | None:
    """Debian's perftest on this machine, which has no RDMA device: a command its parser accepts ends at the device
    lookup ("Did not detect devices"); one it refuses prints why first."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    out = proc.stdout + proc.stderr
    return None if "Did not detect devices" in out else out.strip().splitlines()[0]


def commands(verb: str, mode: str) -> list[list[str]]:
    """The server's and the client's command, as the suite builds them (EFA's GID index is 0; a RoCE GID at most 64)."""
    index = 0 if mode == "efa" else 42
    return [
        rdma_probes.bw_command(verb, mode, "dev0", index, 20001, 5),
        rdma_probes.bw_command(verb, mode, "dev0", index, 20001, 5, "10.42.15.130"),
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("verb", rdma_probes.VERBS)
def test_every_command_agrees_with_the_model_and_the_real_parser(verb: str, mode: str) -> None:
    """The model and Debian's parser agree on every command; the suite builds RoCE's (write over RC) and each EFA
    verb, of which Debian's 4.5 refuses write over SRD (SEND/READ only before 23.07)."""
    for argv in commands(verb, mode):
        assert argv[argv.index("-x") + 1] == ("0" if mode == "efa" else "42")  # always the intended GID's index
        model = perftest.refusal(perftest.DEBIAN_BOOKWORM, True, argv)
        assert (model is None) == (real_parser(argv) is None), (argv, model, real_parser(argv))
        assert (model is None) == (mode != "efa" or verb != "write"), (argv, model)


def test_out_of_range_gid_index_is_refused_by_both() -> None:
    """perftest's MAX_GID_IX is 64 in every release: a GID beyond it cannot be measured by perftest at all."""
    argv = rdma_probes.bw_command("write", "shared", "dev0", 65, 20001, 5)
    assert perftest.refusal(perftest.DEBIAN_BOOKWORM, True, argv) == " Gid index should be between 0 and 64"
    assert real_parser(argv) == "Gid index should be between 0 and 64"


def test_the_srd_probe_reads_the_real_parser() -> None:
    """SRD_PROBE_SCRIPT run here: Debian's perftest refuses write over SRD and passes read and send to the device
    lookup, as the model says of its release."""
    proc = subprocess.run(["sh", "-c", rdma_probes.SRD_PROBE_SCRIPT], capture_output=True, text=True, timeout=60)
    verdicts = rdma_probes.srd_verbs(proc.stdout)
    assert verdicts == {"write": "SRD connection only possible in SEND/READ verbs", "read": "", "send": ""}
    assert verdicts == rdma_probes.srd_verbs(perftest.probe_output(perftest.DEBIAN_BOOKWORM, True))


#: generation -> release -> the verb the suite must choose (None: no verb runs)
EXPECTED = {
    "before Nitro v4 (c5n)": {"v4.4-0.9": "send", "v4.5-0.17": "send", "24.01.0-0.38": "send"},
    "Nitro v4+ without RDMA write": {"v4.4-0.9": "send", "v4.5-0.17": "read", "24.01.0-0.38": "read"},
    "Nitro v4+ with RDMA write": {"v4.4-0.9": "send", "v4.5-0.17": "read", "24.01.0-0.38": "write"},
}


@pytest.mark.parametrize("generation", sorted(efa.GENERATIONS))
@pytest.mark.parametrize("release", ["v4.4-0.9", "v4.5-0.17", "24.01.0-0.38"])
def test_the_efa_verb_follows_the_device_and_the_images_perftest(generation: str, release: str) -> None:
    caps = efa.GENERATIONS[generation]
    chosen = rdma_probes.choose_efa_verb(caps, rdma_probes.srd_verbs(perftest.probe_output(release, True)))
    assert isinstance(chosen, tuple) and chosen[0] == EXPECTED[generation][release], chosen
    verb = chosen[0]
    for argv in commands(verb, "efa"):
        assert perftest.refusal(release, True, argv) is None
    assert perftest.device_refusal(release, verb, caps) is None  # and the device accepts it at run time
    if not caps & efa.WRITE:
        assert (
            perftest.device_refusal("24.01.0-0.38", "write", caps) == "Write verb is not supported with this EFA device"
        )


def test_without_srd_in_the_image_no_verb_runs_and_the_reason_says_so() -> None:
    no_srd = rdma_probes.srd_verbs(perftest.probe_output("v4.5-0.17", False))
    chosen = rdma_probes.choose_efa_verb(efa.GENERATIONS["Nitro v4+ with RDMA write"], no_srd)
    assert isinstance(chosen, str) and chosen.startswith("no verb runs over SRD here")
    assert "the image's ib_send_bw refuses SRD (SRD not detected in libibverbs)" in chosen


def test_the_proof_of_fabric_counts_the_verbs_own_efa_counters() -> None:
    """A read's data leaves the server (read responses) and arrives at the client: each verb's EFA pair first."""
    from spider_validate.probes import counters as rdma_counters

    before = {f"hw_counters/{n}": 0 for n in ("tx_bytes", "rx_bytes", "rdma_read_bytes", "rdma_read_resp_bytes")}
    after = before | {
        "hw_counters/tx_bytes": 9,
        "hw_counters/rdma_read_resp_bytes": 5,
        "hw_counters/rdma_read_bytes": 7,
    }
    traffic = rdma_counters.delta(before, after, "read")
    assert traffic is not None and (traffic.sent, traffic.received) == (5, 7)
    assert traffic.source == "hw_counters/rdma_read_resp_bytes and hw_counters/rdma_read_bytes"
    assert rdma_probes.data_flow("read") == ("server", "client") and rdma_probes.data_flow("send")[0] == "client"


IMAGE_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "build-rdma-tools-image.sh"


def test_the_image_script_installs_and_checks_every_tool_the_suite_calls() -> None:
    """The build takes minutes and Debian's mirror (run by hand, README): here its shell, and that the tools it checks
    in the image are the ones the suite runs, each from a package it installs (as this machine's dpkg says)."""
    proc = subprocess.run(["shellcheck", "--severity=style", str(IMAGE_SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    script = IMAGE_SCRIPT.read_text()
    checked = set(re.search(r"for tool in ([^;]+); do", script).group(1).split())  # type: ignore[union-attr]
    suite = " ".join(inspect.getsource(m) for m in (rdma, rdma_probes, rdma_fabric, servers, perf_probes))
    used = {f"ib_{v}_bw" for v in rdma_probes.VERBS} | {"python3", *rdma_probes.efa_caps_command("d")[:1]}
    used |= {tool for tool in ("ibv_devices", "fi_pingpong", "ss", "pkill", "timeout", "nohup") if tool in suite}
    assert used == checked
    packages = set(re.search(r"^PACKAGES=(\S+)", script, re.M).group(1).split(","))  # type: ignore[union-attr]
    for tool in ("ib_write_bw", "fi_pingpong", "ss"):
        paths = [shutil.which(tool) or tool] + [f"{d}/{tool}" for d in ("/bin", "/sbin", "/usr/sbin")]  # usrmerge
        owners = [subprocess.run(["dpkg", "-S", p], capture_output=True, text=True).stdout for p in paths]
        assert next(o for o in owners if o).split(":")[0] in packages, (tool, owners)


def test_both_devices_must_allow_the_verb_and_unreadable_capabilities_fail() -> None:
    probe = perftest.probe_output("24.01.0-0.38", True)
    caps: dict[str, tuple[int | None, str]] = {"rdma-server": (efa.GENERATIONS["Nitro v4+ with RDMA write"], ""),
            "rdma-client": (efa.GENERATIONS["Nitro v4+ without RDMA write"], "")}  # fmt: skip
    chosen = rdma.efa_verb(caps, probe)
    assert isinstance(chosen, tuple) and chosen[0] == "read" and chosen[1].data["verb"] == "read"
    unread = rdma.efa_verb({"rdma-client": (None, "ModuleNotFoundError: No module named 'pyverbs'")}, probe)
    assert not isinstance(unread, tuple) and not unread.ok
    assert "rdma-client: cannot read the EFA's capabilities" in unread.detail and "pyverbs" in unread.detail
