"""Checkov suppressions written next to the resource they excuse, with the reason.

checkov 3.3's terraform_json runner ignores inline suppressions (it scans with an empty skip list), so
the skip lives in the resource's `//` comment field in checkov's own syntax and the test that runs checkov
on every stack (tests/cdk/test_checkov.py) accepts a failure only where such a skip names it.
"""

from __future__ import annotations

from cdktn import TerraformResource

SKIP_KEY = "checkov"


def checkov_skip(resource: TerraformResource, check_id: str, reason: str) -> None:
    resource.add_override(f"//.{SKIP_KEY}.{check_id}", f"checkov:skip={check_id}:{reason}")
