# ruff: noqa: E501 - the table holds exact lines of code
"""Issue 12's and issue 24's "tests that would not fail today": apply each deliberate breakage to the validator, run
the tests that must catch it, and restore the file (also on failure). Prints CAUGHT or MISSED per breakage.

    .venv/bin/python scripts/validator_breakages.py          # all (about 7 minutes: most run on the lab double)
    .venv/bin/python scripts/validator_breakages.py 3 12     # some, by index

It edits validators/spider_validate/ in place while a breakage's tests run: do not run it beside other work there.
scripts/infra_breakages.py does the same for cdk/ and bootstrap/ with `run`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
V = REPO / "validators" / "spider_validate"
T = "tests/"
Breakage = tuple[str, str, str, str, list[str]]
# (what breaks, file, exact text, broken text, tests that must fail)
B: list[Breakage] = [
    (
        "run exits 0 when probes fail",
        "cli/run.py",
        "exit_now(EXIT_PASSED if result.passed else code, abandoned=runner.abandoned)",
        "exit_now(EXIT_PASSED, abandoned=runner.abandoned)",
        [T + "validator/suites/test_validate_lab.py::test_cli_end_to_end_to_a_failing_probe_exit_code_junit_and_json"],
    ),
    (
        "JUnit without <failure>",
        "report/formats.py",
        "            case.add_failure_info(message=message)",
        "            pass",
        [T + "validator/suites/test_validate_lab.py::test_cli_end_to_end_to_a_failing_probe_exit_code_junit_and_json"],
    ),
    (
        "JUnit reports a skipped test as passed",
        "report/formats.py",
        "            case.add_skipped_info(message=message)",
        "            pass",
        [T + "validator/suites/test_validate_lab.py::test_a_skipped_test_is_skipped_in_junit_never_passed"],
    ),
    (
        "JSON passed ignoring errors (model)",
        "engine/model.py",
        "all(t.status in {Status.PASS, Status.SKIP, Status.WARN} for t in self.tests)",
        "all(t.status is not Status.FAIL for t in self.tests)",
        [T + "validator/suites/test_validate_lab.py::test_an_error_is_not_a_pass_in_the_exit_code_or_the_json"],
    ),
    (
        "JSON passed ignoring errors (report)",
        "report/formats.py",
        '    data["passed"] = result.passed',
        '    data["passed"] = result.counts()["fail"] == 0',
        [T + "validator/suites/test_validate_lab.py::test_an_error_is_not_a_pass_in_the_exit_code_or_the_json"],
    ),
    (
        "apps distinct-IP check disabled",
        "suites/apps.py",
        "if owners[info.ip] != app:",
        "if False:",
        [
            T
            + "validator/suites/test_validate_lab.py::test_chart_apps_have_distinct_ips_from_their_own_pools[shared-ip]"
        ],
    ),
    (
        "apps own-pool check disabled",
        "suites/apps.py",
        "elif names and not any(",
        "elif False and not any(",
        [
            T
            + "validator/suites/test_validate_lab.py::test_chart_apps_have_distinct_ips_from_their_own_pools[foreign-pool]"
        ],
    ),
    (
        "apps owner (asks for a pool of its own) check disabled",
        "suites/apps.py",
        "if pod and not names:",
        "if False:",
        [T + "validator/suites/test_validate_lab.py::test_chart_apps_have_distinct_ips_from_their_own_pools[no-pool]"],
    ),
    (
        "pod-to-node pings the pod's own address",
        "suites/connectivity.py",
        'f"node/{client.node}", client.node_ip)',
        'f"node/{client.node}", client.ip)',
        [T + "validator/suites/test_validate_lab.py::test_pod_to_node_pings_the_node_not_the_pod_itself"],
    ),
    (
        "HTTP probe does not check which pod answered (suite)",
        "suites/connectivity.py",
        "ctx.params.http_port, {server.name})",
        "ctx.params.http_port, None)",
        [T + "validator/suites/test_validate_lab.py::test_http_to_a_pod_checks_which_pod_answered"],
    ),
    (
        "HTTP probe does not check which pod answered (action)",
        "actions/reach.py",
        "if expect_body is not None and body not in expect_body:",
        "if False:",
        [T + "validator/suites/test_validate_lab.py::test_http_to_a_pod_checks_which_pod_answered"],
    ),
    (
        "Service's answer not checked",
        "suites/connectivity.py",
        '"service/echo", ctx.service_ip, 80, servers)',
        '"service/echo", ctx.service_ip, 80, None)',
        [T + "validator/suites/test_validate_lab.py::test_the_services_answer_must_come_from_one_of_its_backends"],
    ),
    (
        "4xx counted as success",
        "actions/reach.py",
        "if reply.status != 200:",
        "if reply.status >= 500:",
        [T + "validator/suites/test_validate_lab.py::test_an_http_4xx_is_a_failure"],
    ),
    (
        "RDMA threshold x8",
        "suites/rdma.py",
        "return rate * fraction, ",
        "return rate * fraction * 8, ",
        [T + "validator/suites/test_rdma.py::test_bandwidth_is_judged_against_a_fraction_of_the_line_rate"],
    ),
    (
        "RDMA GID chosen without the address (the first RoCE v2 entry)",
        "probes/rdma.py",
        "    found = [g for g in table if g.gid == wanted]",
        "    found = [g for g in table if g.type == ROCE_V2]",
        [T + "validator/suites/test_rdma.py::test_each_pod_uses_the_gid_of_its_own_address_at_any_index"],
    ),
    (
        "perftest's own GIDs not checked against the intended ones",
        "suites/rdma.py",
        "        if said.get(side) != path.gid.gid",
        "        if False",
        [T + "validator/suites/test_rdma.py::test_bandwidth_fails_when_perftest_used_another_gid"],
    ),
    (
        "perftest without the GID index (EFA's address handle has no destination)",
        "probes/rdma.py",
        '"-d", device, "-x", str(gid_index), "-p"',
        '"-d", device, "-p"',
        [T + "validator/probes/test_rdma_verbs.py::test_every_command_agrees_with_the_model_and_the_real_parser"],
    ),
    (
        "EFA verb chosen without the device's capabilities",
        "probes/rdma.py",
        "        if verb in EFA_CAPS and not device_caps & EFA_CAPS[verb]:",
        "        if False:",
        [T + "validator/probes/test_rdma_verbs.py::test_the_efa_verb_follows_the_device_and_the_images_perftest"],
    ),
    (
        "Soft-RoCE pods on the pod network (rxe0 answers the node's address only)",
        "suites/rdma.py",
        '    if mode == "softroce":\n        pod["spec"]["hostNetwork"] = True',
        '    if False:\n        pod["spec"]["hostNetwork"] = True',
        [T + "validator/suites/test_rdma.py::test_rdma_pods_request_what_rdma_needs_and_validate"],
    ),
    (
        "RDMA isolation always passing",
        "suites/rdma.py",
        '    if found:\n        return Outcome(False, f"{pod} requests no RDMA device',
        '    if False:\n        return Outcome(False, f"{pod} requests no RDMA device',
        [T + "validator/suites/test_rdma.py::test_device_and_isolation_outcomes"],
    ),
    (
        "RDMA unknown line rate passes",
        "engine/discovery.py",
        '    if unknown:\n        return f"unknown line rate (',
        '    if False:\n        return f"unknown line rate (',
        [T + "validator/suites/test_rdma.py::test_bandwidth_with_an_unknown_line_rate_skips_with_the_reason"],
    ),
    (
        "ipam ignores the allocated count",
        "suites/ipam.py",
        "if count != before + 1:",
        "if False:",
        [T + "validator/ipam/test_ipam_lab.py::test_each_ipam_promise_is_checked[stale-count]"],
    ),
    (
        "ipam release ignores the allocated count",
        "suites/ipam.py",
        "            if count != before:\n",
        "            if False:\n",
        [T + "validator/ipam/test_ipam_lab.py::test_each_ipam_promise_is_checked[stale-count-on-release]"],
    ),
    (
        "ipam ignores the pod UID",
        "suites/ipam.py",
        'if records.get(ip, {}).get("podUid") != uid:',
        "if ip not in records:",
        [T + "validator/ipam/test_ipam_lab.py::test_each_ipam_promise_is_checked[other-uid]"],
    ),
    (
        "ipam ignores a running pod over capacity",
        "suites/ipam.py",
        "        if overcommitted:\n",
        "        if False:\n",
        [T + "validator/ipam/test_ipam_lab.py::test_each_ipam_promise_is_checked[runs-over-capacity]"],
    ),
    (
        "audit: unreadable records rule disabled",
        "ipam/audit.py",
        "        except ValueError:  # json.JSONDecodeError included\n",
        "        except ValueError:  # json.JSONDecodeError included\n            continue\n",
        [
            T
            + "validator/ipam/test_audit.py::test_each_inconsistency_is_found_with_names_and_a_fix[unreadable-garble_records]"
        ],
    ),
    (
        "audit: endpoint mismatch rule disabled",
        "ipam/audit.py",
        'elif current.get("uid") != r.uid or not any(',
        'elif False and current.get("uid") != r.uid or False and not any(',
        [
            T
            + "validator/ipam/test_audit.py::test_each_inconsistency_is_found_with_names_and_a_fix[endpoint-mismatch-endpoint_of_another_pod]"
        ],
    ),
    (
        "audit: duplicates among running pods disabled",
        "ipam/audit.py",
        "if len(refs) > 1 and ip in ix.holders and not _held_by_several(ix.holders[ip]):",
        "if False:",
        [
            T
            + "validator/ipam/test_audit.py::test_each_inconsistency_is_found_with_names_and_a_fix[duplicate-configure_ip_twice]"
        ],
    ),
    (
        "audit: ended pods not counted as leaks",
        "ipam/audit.py",
        '            and pod.get("status", {}).get("phase") not in TERMINAL\n',
        "\n",
        [T + "validator/ipam/test_audit.py::test_each_inconsistency_is_found_with_names_and_a_fix[leak-end_pod]"],
    ),
    (
        "proof of fabric passes when only one side's device counted the bytes",
        "probes/counters.py",
        "if sent >= need and received >= need:",
        "if sent >= need or received >= need:",
        [
            T
            + "validator/actions/test_rdma_fabric.py::test_the_senders_sent_and_the_receivers_received_counters_must_both_have_moved"
        ],
    ),
    (
        "proof of fabric reads the receiver's traffic on the sender's device",
        "actions/fabric.py",
        "received = rdma_counters.delta(before[receiver], after[receiver], verb)",
        "received = rdma_counters.delta(before[sender], after[sender], verb)",
        [
            T
            + "validator/actions/test_rdma_fabric.py::test_the_senders_sent_and_the_receivers_received_counters_must_both_have_moved"
        ],
    ),
    (
        "exec waits for a command that hangs past its timeout",
        "cluster/kube.py",
        "        while resp.is_open() and time.monotonic() < deadline:",
        "        while resp.is_open():",
        [T + "validator/cluster/test_kube_client.py::test_exec_of_a_command_that_hangs_ends_at_its_timeout"],
    ),
    (
        "a probe whose exec timed out is retried as a lost exit code",
        "actions/reach.py",
        "    if result.timed_out:\n",
        "    if False:\n",
        [
            T
            + "validator/cluster/test_kube_client.py::test_a_probe_whose_command_hangs_ends_at_the_exec_timeout_with_that_reason"
        ],
    ),
    (
        "watch keeps the probe pod of a node that left or is not ready",
        "watch/loop.py",
        "            if node not in nodes or ended:",
        "            if ended:",
        [T + "validator/watch/test_watch_lab.py::test_metrics_move_the_right_way_within_one_interval_of_each_fault"],
    ),
    (
        "watch leaves a resolved finding kind at its last count",
        "watch/loop.py",
        "        for kind in self.kinds:",
        "        for kind in counts:",
        [T + "validator/watch/test_watch_lab.py::test_metrics_move_the_right_way_within_one_interval_of_each_fault"],
    ),
    (
        "perf throughput verdict reads the tolerance as the share the pods need",
        "suites/perf.py",
        "need, ratio = host_gbps * (1 - tolerance),",
        "need, ratio = host_gbps * tolerance,",
        [
            T
            + "validator/probes/test_perf_probes.py::test_the_throughput_verdict_is_pods_reach_one_minus_the_tolerance_of_the_host"
        ],
    ),
    (
        "ping loss read without its decimals (33.3333% as 3333%)",
        "probes/reach.py",
        '_LOSS = re.compile(r"([\\d.]+)% packet loss")',
        '_LOSS = re.compile(r"(\\d+)% packet loss")',
        [T + "validator/probes/test_probes.py::test_iputils_ping_loss_with_decimals_is_a_percentage"],
    ),
    (
        "ping probe without a deadline: a reply later than 2 x RTT after the last probe counted lost",
        "probes/reach.py",
        '"-w", str(deadline), "-W"',
        '"-W"',
        [T + "validator/probes/test_probes.py::test_iputils_ping_counts_a_reply_that_comes_late_but_within_the_timeout"],
    ),
    (
        "ping judged by its summary's replies, also those to probes sent after the judged ones",
        "actions/reach.py",
        "answered = count - stats.unanswered(count)",
        "answered = min(stats.received, count)",
        [T + "validator/probes/test_probes.py::test_ping_partial_loss_is_of_the_probes_not_of_the_summary"],
    ),
    (
        "kubeconfig keeps an existing file's mode",
        "cli/kubeconfig.py",
        '    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates it 0600\n    try:\n        with os.fdopen(fd, "w") as fh:\n            fh.write(text)\n        os.replace(tmp, path)',
        '    fd, tmp = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), ""\n    try:\n        with os.fdopen(fd, "w") as fh:\n            fh.write(text)',
        [T + "validator/cluster/test_kubeconfig.py::test_an_existing_file_is_replaced_with_mode_0600"],
    ),
    (
        "cloud audit: rule prefix_missing disabled",
        "ipam/cloud.py",
        "    prefix_missing,\n",
        "",
        [T + "validator/cloud/test_cloud_audit.py::test_each_fault_is_found_by_exactly_its_rule[detach_prefix]"],
    ),
    (
        "cloud audit: rule cloud_conflict disabled",
        "ipam/cloud.py",
        "    cloud_conflict,\n",
        "",
        [T + "validator/cloud/test_cloud_audit.py::test_each_fault_is_found_by_exactly_its_rule[secondary_elsewhere]"],
    ),
    (
        "cloud audit: rule pod_not_routed disabled",
        "ipam/cloud.py",
        "    pod_not_routed,\n",
        "",
        [T + "validator/cloud/test_cloud_audit.py::test_each_fault_is_found_by_exactly_its_rule[pod_on_other_node]"],
    ),
    (
        "cloud audit: rule unused_prefix disabled",
        "ipam/cloud.py",
        "    unused_prefix,\n",
        "",
        [T + "validator/cloud/test_cloud_audit.py::test_each_fault_is_found_by_exactly_its_rule[extra_prefix]"],
    ),
    (
        "cloud audit: rule unused_reservation disabled",
        "ipam/cloud.py",
        "    unused_reservation,\n",
        "",
        [T + "validator/cloud/test_cloud_audit.py::test_each_fault_is_found_by_exactly_its_rule[idle_reservation]"],
    ),
    (
        "cloud audit: a warning fails the audit",
        "engine/model.py",
        "and all(t.status in {Status.PASS, Status.SKIP, Status.WARN} for t in self.tests)",
        "and all(t.status in {Status.PASS, Status.SKIP} for t in self.tests)",
        [T + "validator/cloud/test_cloud_audit.py::test_the_cli_fails_on_a_fault_and_only_warns_on_waste"],
    ),
    (
        "watch: the node's role accepted as the cloud side's credentials",
        "cloud/ec2.py",
        'if explicit_credentials and credentials.method in {"iam-role", "container-role"}:',
        "if False:",
        [T + "validator/cloud/test_cloud_audit.py::test_the_watch_refuses_the_nodes_role"],
    ),
    (
        "DRA mode: aws-dranet's devices not discovered",
        "engine/discovery.py",
        '    if detected == "none" and ctx.params.rdma_mode in {"auto", "efa"} and dra_published(ctx, nodes):',
        '    if False:',
        [T + "validator/suites/test_rdma_dra.py::test_rdma_device_has_one_verdict_through_a_claim_and_through_the_resource"],
    ),
    (
        "DRA mode: a claiming pod pinned by nodeName (the scheduler never allocates its claim)",
        "suites/rdma.py",
        '        del pod["spec"]["nodeName"]',
        "        pass",
        [T + "validator/suites/test_rdma_dra.py::test_rdma_device_has_one_verdict_through_a_claim_and_through_the_resource"],
    ),
    (
        "DRA mode: the claimed device not compared with the measured one",
        "suites/rdma.py",
        "            if rdma_device != measured.get(pod):",
        "            if False:",
        [T + "validator/suites/test_rdma_dra.py::test_the_claimed_device_is_linked_to_the_device_whose_counters_the_proof_reads"],
    ),
]


def run(table: list[Breakage], base: Path, only: list[str]) -> int:
    """Each breakage of `table` (files relative to `base`) in turn, or those whose index is in `only`."""
    missed = []
    for i, (what, rel, old, new, tests) in enumerate(table):
        if only and str(i) not in only:
            continue
        path = base / rel
        original = path.read_text()
        assert original.count(old) == 1, f"{what}: the text to break is not in {rel} exactly once"
        path.write_text(original.replace(old, new))
        start = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            path.write_text(original)
        summary = (proc.stdout.strip().splitlines() or ["?"])[-1]
        caught = proc.returncode != 0
        verdict = "CAUGHT" if caught else "MISSED"
        print(f"{verdict} {what}: {' '.join(tests)} -> {summary} ({time.monotonic() - start:.0f}s)", flush=True)
        if not caught:
            missed.append(what)
    print(f"missed: {missed}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(run(B, V, sys.argv[1:]))
