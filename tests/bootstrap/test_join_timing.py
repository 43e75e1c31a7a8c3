"""Join timing, whatever retry design bootstrap/ settles on: how long a node goes without looking at its join parameter
(on a virtual clock, over the whole deadline its unit gives it, and across the unit's restart), and how the refresh
interval compares with the lifetime of the credentials it publishes. Every figure comes from the files a node gets
(node.env, the units) or from the calls its scripts make; only kubeadm's own fixed lifetime is cited here."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from cdk import userdata
from cdk.config import ClusterConfig
from cdk.ipplan import make_plan
from tests.bootstrap.clock import seconds, unit_settings, use_virtual_clock
from tests.bootstrap.sandbox import LIB, Keys, Sandbox, make_sandbox

HA = ClusterConfig.model_validate({"control_plane": {"count": 3}})
HOUR = 3600.0


def go_duration(text: str) -> float:
    """kubeadm's --ttl, a Go duration (time.ParseDuration: decimal numbers each with a unit of ns, us, µs, ms, s, m,
    h, src/time/format.go unitMap; "0" alone); 0 means the token never expires (kubeadm token create --help)."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    if text == "0":
        return float("inf")
    parts = re.findall(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a Go duration: {text}"
    return sum(float(n) * units[u] for n, u in parts)


def join_timeout(node_env: str) -> float:
    """SPR_JOIN_TIMEOUT of a node.env: how long one run of the bootstrap waits for and retries its join."""
    match = re.search(r"^SPR_JOIN_TIMEOUT=(\d+)$", node_env, re.M)
    assert match, "node.env sets no SPR_JOIN_TIMEOUT"
    return float(match[1])


def refresh_interval(control_plane: Sandbox) -> float:
    """The longest time between two runs of the refresh: the timer's OnUnitActiveSec, plus how late systemd may fire
    it (AccuracySec, 1 min when unset, and RandomizedDelaySec, 0 when unset: systemd.timer(5))."""
    timer = unit_settings(control_plane.root / "etc/systemd/system/spiderpool-rdma-join-refresh.timer", "Timer")
    assert "OnUnitActiveSec" in timer, f"the refresh is not periodic: {timer}"
    late = seconds(timer.get("AccuracySec", "1min")) + seconds(timer.get("RandomizedDelaySec", "0"))
    return seconds(timer["OnUnitActiveSec"]) + late


def with_virtual_clock(node: Sandbox, config: ClusterConfig, name: str) -> None:
    """sleep and date on the virtual clock, and the join deadline the node really gets (the sandbox shortens it)."""
    use_virtual_clock(node)
    plan = make_plan(config)
    env = userdata.node_files(config, plan, next(n for n in plan.nodes if n.name == name))[
        "/etc/spiderpool-rdma/node.env"
    ]
    node.set_env("SPR_JOIN_TIMEOUT", str(int(join_timeout(env))))


def bootstrapped_control_plane(tmp_path: Path, keys: Keys) -> Sandbox:
    """control-plane-0 of the HA configuration, bootstrapped: it published the version and the join commands."""
    cp = make_sandbox(tmp_path / "control-plane-0", HA, "control-plane-0", keys)
    assert cp.run().returncode == 0
    return cp


def looks(node: Sandbox, parameter: str) -> tuple[list[float], float]:
    """The virtual times at which the node read `parameter`, and the time its run ended."""
    now, times = 0.0, []
    for call in node.calls():
        if call.startswith("clock "):
            now = float(call.split()[1])
        elif call.startswith("aws ssm get-parameter") and f"/{parameter} " in call + " ":
            times.append(now)
    return times, now


@pytest.mark.parametrize(
    "fault",
    [{"STUB_JOIN_READY_AFTER": "0"}, {"STUB_FAIL": "^kubeadm join"}],
    ids=["never-published", "every-join-fails"],
)
def test_a_node_never_goes_half_a_refresh_interval_without_looking_for_a_fresh_publication(
    tmp_path: Path, keys: Keys, fault: dict[str, str]
) -> None:
    """A worker waiting for its join command (never published; or published, but every join with it fails, so it
    waits for a newer one) looks again at least every half refresh interval, over its whole join deadline and across
    the restart of its unit after that deadline: whatever is published next, it uses within half an interval (the
    half hour of the hourly refresh), long before that value is superseded."""
    cp = bootstrapped_control_plane(tmp_path, keys)
    worker = make_sandbox(tmp_path / "worker-0", HA, "worker-0", keys, cp.cluster.path)
    with_virtual_clock(worker, HA, "worker-0")
    proc = worker.run(**fault)
    assert proc.returncode != 0, "the join was meant to wait until the node gave up"
    times, end = looks(worker, "join-worker")
    unit = unit_settings(worker.root / "etc/systemd/system/spiderpool-rdma-bootstrap.service", "Service")
    assert unit.get("Restart") in {"on-failure", "always"}, "after its deadline the node would never look again"
    timeout = join_timeout((worker.root / "etc/spiderpool-rdma/node.env").read_text())
    assert end >= timeout - refresh_interval(cp) / 2, f"the run ended at {end:.0f}s of a {timeout:.0f}s deadline"
    # the next run looks at once (its first step): the gap across a restart is the rest of this run and RestartSec
    gaps = [b - a for a, b in itertools.pairwise(times)] + [end - times[-1] + seconds(unit["RestartSec"])]
    bound = refresh_interval(cp) / 2
    print(f"\n{len(times)} looks over {end:.0f}s, the longest gap {max(gaps):.0f}s (bound {bound:.0f}s)")
    assert len(times) > 2 and max(gaps) <= bound, f"looks at {times}, ended at {end}: a gap of {max(gaps):.0f}s"


def test_the_refresh_runs_before_the_token_or_the_certificate_key_it_published_expires(
    tmp_path: Path, keys: Keys
) -> None:
    """Each refresh publishes a token (and, while control planes are missing, a certificate key) that must outlive the
    time until the next refresh, so that what a node reads is always valid: the token's TTL is what the refresh asks
    kubeadm for; the certificate key lives as long as kubeadm's kubeadm-certs Secret, whose owner token kubeadm creates
    with DefaultCertTokenDuration, 2 h (cmd/kubeadm/app/constants/constants.go; phases/copycerts/copycerts.go,
    createShortLivedBootstrapToken), or 24 h for a token created without --ttl (DefaultTokenDuration)."""
    cp = bootstrapped_control_plane(tmp_path, keys)
    cp.reset_calls()
    assert cp.run(f"{LIB}/refresh-join.sh").returncode == 0  # two of three control planes missing: both joins
    creates = [c.split() for c in cp.calls() if c.startswith("kubeadm token create")]
    assert len(creates) == 2 and any("--certificate-key" in c for c in creates), creates
    ttls = [go_duration(c[c.index("--ttl") + 1]) if "--ttl" in c else 24 * HOUR for c in creates]
    certificate_key = 2 * HOUR
    interval = refresh_interval(cp)
    assert interval < min(*ttls, certificate_key), f"refresh every {interval}s; tokens live {ttls}s, the key 2 h"
