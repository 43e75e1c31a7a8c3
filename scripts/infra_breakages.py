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
]

if __name__ == "__main__":
    sys.exit(run(B, REPO, sys.argv[1:]))
