#!/usr/bin/env python3
"""Pin the kubelet's ECR credential provider: its version and each architecture's SHA-256, from kubernetes/k8s.io's
file promotion manifest (artifacts/manifests/k8s-staging-provider-aws/VERSION.yaml), the record of what
artifacts.k8s.io serves under binaries/cloud-provider-aws/. Writes cdk/data/ecr_credential_provider.json; the
synthesis gives each node the digest of its architecture, and the node refuses any other binary (bootstrap/common.sh).

    .venv/bin/python scripts/pin_ecr_credential_provider.py v1.31.7          # the manifest from GitHub
    .venv/bin/python scripts/pin_ecr_credential_provider.py v1.31.7 FILE     # a copy of it
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cdk.userdata import ECR_PROVIDER_ARCHES, ECR_PROVIDER_FILE  # noqa: E402

MANIFEST = (
    "https://raw.githubusercontent.com/kubernetes/k8s.io/main/artifacts/manifests/k8s-staging-provider-aws/{}.yaml"
)


def pins(version: str, manifest: str, source: str) -> dict[str, object]:
    """The pin file's content: every architecture's binary must be in the manifest under its version's directory."""
    digests = {entry["name"]: entry["sha256"] for entry in yaml.safe_load(manifest)["files"]}
    sha256 = {}
    for arch in ECR_PROVIDER_ARCHES:
        name = f"{version}/linux/{arch}/ecr-credential-provider-linux-{arch}"
        if not re.fullmatch(r"[0-9a-f]{64}", digests.get(name, "")):
            raise SystemExit(
                f"{source} promotes no {name}: artifacts.k8s.io does not serve that version's binaries "
                "(the manifests of v1.32.0 to v1.36.1 name them without the version directory); pick another version"
            )
        sha256[arch] = digests[name]
    return {"version": version, "source": source, "sha256": sha256}


def main(argv: list[str]) -> int:
    version, *copy = argv
    source = MANIFEST.format(version)
    if copy:
        text = Path(copy[0]).read_text()
    else:
        with urllib.request.urlopen(source, timeout=30) as response:
            text = response.read().decode()
    ECR_PROVIDER_FILE.write_text(json.dumps(pins(version, text, source), indent=1) + "\n")
    print(f"wrote {ECR_PROVIDER_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
