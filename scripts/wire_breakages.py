"""Issue 26's check of the checks: break one wire behaviour of the lab's API server at a time (tests/lab/apiserver.py
and what it serves), run the tests that must catch it (kubectl's, or the official client's), restore the file (also
on failure). Prints CAUGHT or MISSED per breakage, as scripts/validator_breakages.py does for the validator.

    .venv/bin/python scripts/wire_breakages.py          # all (about 2 minutes; as root: the lab's pods)
    .venv/bin/python scripts/wire_breakages.py 0 3      # some, by index

It edits tests/lab/ and tests/upstream/ in place while a breakage's tests run: do not run it beside other work there.
"""

from __future__ import annotations

import sys
from pathlib import Path

from validator_breakages import Breakage, run

REPO = Path(__file__).resolve().parents[1]
T = "tests/lab/test_apiserver.py::"
B: list[Breakage] = [
    (
        "the exec error channel always says Success",
        "lab/apiserver.py",
        "    if code == 0:\n        return {\"metadata\": {}, \"status\": \"Success\"}",
        "    if True:\n        return {\"metadata\": {}, \"status\": \"Success\"}",
        [T + "test_kubectl_applies_the_validators_manifests_execs_and_deletes_them"],
    ),
    (
        "the exec error channel's cause has no exit code",
        "lab/apiserver.py",
        '"details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},',
        '"details": {"causes": []},',
        [T + "test_kubectl_applies_the_validators_manifests_execs_and_deletes_them"],
    ),
    (
        "a watch's initial events end without their bookmark",
        "lab/apiserver.py",
        '                annotations = {"k8s.io/initial-events-end": "true"}',
        "                annotations = {}",
        [T + "test_kubectl_wait_follows_a_watch_to_the_deletion"],
    ),
    (
        "a page's continue token starts at its own last item",
        "lab/apiserver.py",
        'meta["continue"] = encode_continue(version, page[-1][0] + "\\x00")',
        'meta["continue"] = encode_continue(version, page[-1][0])',
        [T + "test_kubectl_pages_through_a_list"],
    ),
    (
        "a list says nothing of the pages after it",
        "lab/apiserver.py",
        'meta["continue"] = encode_continue(version, page[-1][0] + "\\x00")',
        "pass",
        [T + "test_kubectl_pages_through_a_list"],
    ),
    (
        "a Status without its reason",
        "upstream/apimachinery.py",
        'body |= {"message": self.message, "reason": self.reason}',
        'body |= {"message": self.message}',
        [T + "test_kubectl_says_what_the_status_says"],
    ),
    (
        "403 without the namespace's scope",
        "lab/apiserver.py",
        'scope = f"in the namespace {go_quote(request.namespace)}" if request.namespace else "at the cluster scope"',
        'scope = "at the cluster scope"',
        [T + "test_rbac_from_the_validators_roles_is_enforced_with_the_api_servers_words"],
    ),
    (
        "exec authorized as get only (before 1.35)",
        "lab/apiserver.py",
        '            checks.append(dataclasses.replace(request, verb="create"))',
        "            pass",
        [T + "test_rbac_from_the_validators_roles_is_enforced_with_the_api_servers_words"],
    ),
    (
        "a container status without imageID",
        "lab/kubelet.py",
        '"imageID": container["image"] if running else "",',
        "",
        [T + "test_the_official_client_lists_watches_and_execs"],
    ),
]


if __name__ == "__main__":
    sys.exit(run(B, REPO / "tests", sys.argv[1:]))
