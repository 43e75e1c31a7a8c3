# ruff: noqa: E501 - the table holds exact lines of code
"""Issue 24's "tests that would not fail today" for what cdk/ and bootstrap/ promise: apply each deliberate breakage,
run the tests that must catch it, restore the file (also on failure). Prints CAUGHT or MISSED per breakage.

    .venv/bin/python scripts/infra_breakages.py          # all (synthesis and the bootstrap sandbox: minutes)
    .venv/bin/python scripts/infra_breakages.py 0 2      # some, by index

It edits cdk/ and bootstrap/ in place while a breakage's tests run: do not run it beside other work there.
"""

from __future__ import annotations

import sys

from validator_breakages import REPO, Breakage, T, run

# (what breaks, file under the repository, exact text, broken text, tests that must fail)
B: list[Breakage] = [
    (
        "the cluster key usable without SSM (no kms:ViaService)",
        "cdk/constructs/iam.py",
        '            "Condition": {"StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"}},\n',
        "",
        [T + "cdk/test_iam.py::test_the_cluster_key_is_usable_only_through_ssm"],
    ),
    (
        "the cluster key usable through any AWS service",
        "cdk/constructs/iam.py",
        '"kms:ViaService": "ssm.*.amazonaws.com"',
        '"kms:ViaService": "*.amazonaws.com"',
        [T + "cdk/test_iam.py::test_the_cluster_key_is_usable_only_through_ssm"],
    ),
    (
        "admin_cidr dropped: the admin network reaches no API port",
        "cdk/stack.py",
        "ApiClients(vpc=config.vpc_cidr, admin=config.admin_cidr)",
        "ApiClients(vpc=config.vpc_cidr)",
        [T + "cdk/test_network_paths.py::test_the_admin_network_reaches_the_api_port_and_nothing_else"],
    ),
    (
        "the API load balancer's group without the admin network",
        "cdk/constructs/api_endpoint.py",
        "        allow_api_from(self, group.id, api_clients)",
        "        allow_api_from(self, group.id, ApiClients(vpc=api_clients.vpc))",
        [T + "cdk/test_network_paths.py::test_the_admin_network_reaches_the_api_port_and_nothing_else"],
    ),
    (
        "the admin network let in on every port",
        "cdk/constructs/security.py",
        '            ip_protocol="tcp",\n            from_port=API_PORT,\n            to_port=API_PORT,\n            description=f"Kubernetes API from the {label} network",',
        '            ip_protocol="-1" if label == "admin" else "tcp",\n            from_port=API_PORT,\n            to_port=API_PORT,\n            description=f"Kubernetes API from the {label} network",',
        [T + "cdk/test_network_paths.py::test_the_admin_network_reaches_the_api_port_and_nothing_else"],
    ),
    (
        "the join backoff without its cap, and steeper (a wait of 2560 s within the 1 h deadline)",
        "bootstrap/lib.sh",
        "    delay=$((delay * 2 > 60 ? 60 : delay * 2))",
        "    delay=$((delay * 8))",
        [
            T
            + "bootstrap/test_join_timing.py::test_a_node_never_goes_half_a_refresh_interval_without_looking_for_a_fresh_publication"
        ],
    ),
    (
        "the bootstrap unit restarted an hour after its join deadline",
        "bootstrap/spiderpool-rdma-bootstrap.service.j2",
        "RestartSec=60",
        "RestartSec=3600",
        [
            T
            + "bootstrap/test_join_timing.py::test_a_node_never_goes_half_a_refresh_interval_without_looking_for_a_fresh_publication"
        ],
    ),
    (
        "the join credentials refreshed every 3 h",
        "bootstrap/spiderpool-rdma-join-refresh.timer",
        "OnUnitActiveSec=1h",
        "OnUnitActiveSec=3h",
        [
            T
            + "bootstrap/test_join_timing.py::test_the_refresh_runs_before_the_token_or_the_certificate_key_it_published_expires"
        ],
    ),
    (
        "worker tokens that live 1 h, refreshed hourly",
        "bootstrap/control-plane.sh",
        "token create --ttl 3h --print-join-command --kubeconfig",
        "token create --ttl 1h --print-join-command --kubeconfig",
        [
            T
            + "bootstrap/test_join_timing.py::test_the_refresh_runs_before_the_token_or_the_certificate_key_it_published_expires"
        ],
    ),
    (
        "rdma_devices: dra accepted on a minor before aws-dranet's",
        "cdk/config.py",
        "    if int(c.kubernetes_version.split(\".\")[1]) < DRA_OLDEST_MINOR:",
        "    if False:",
        [T + "cdk/test_config.py::test_bad_input_is_reported_and_nothing_is_written[dra-before-its-chart-supports]"],
    ),
    (
        "a DRA worker's containerd without NRI (dranet cannot act on pods)",
        "bootstrap/common.sh",
        '  if [[ ${SPR_RDMA_DEVICES} == dra ]]; then\n    # aws-dranet',
        '  if false; then\n    # aws-dranet',
        [T + "bootstrap/test_bootstrap_sandbox.py::test_a_dra_worker_enables_containerds_nri_for_aws_dranet_and_no_other_node_does"],
    ),
    (
        "a replaced control-plane-0's old etcd member removed although it answers etcd's health check",
        "bootstrap/replace-member.sh",
        "elif live(targets[0]):",
        "elif False:",
        [T + "bootstrap/test_member_replacement.py::test_a_live_member_is_never_removed"],
    ),
    (
        "a replaced control-plane-0's old etcd member removed although its kubelet still posts status",
        "bootstrap/replace-member.sh",
        'if grep -qx "${name}" <<<"${live}"; then',
        "if false; then",
        [T + "bootstrap/test_member_replacement.py::test_a_live_member_is_never_removed"],
    ),
]

if __name__ == "__main__":
    sys.exit(run(B, REPO, sys.argv[1:]))
