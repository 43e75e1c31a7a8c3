#!/usr/bin/env python3
"""Pin the kubectl image of the chart's apply and delete jobs for every Kubernetes minor a cluster may have: the
newest release of each minor and its digest, from kubernetes/k8s.io's image promotion manifest
(registry.k8s.io/images/k8s-staging-kubernetes/images.yaml, the record of what registry.k8s.io serves as
registry.k8s.io/kubectl). Writes charts/spiderpool-rdma/files/kubectl-images.json; the chart runs the release of the
cluster's own minor (kubectl supports one minor of skew either way: kubernetes.io/releases/version-skew-policy).

A minor the manifest does not hold yet may be named with `--release MINOR=TAG`: it is recorded without a digest
(pulled by tag, and the chart says so), until a manifest that promotes it is at hand.

    .venv/bin/python scripts/pin_kubectl_images.py                          # the manifest from GitHub
    .venv/bin/python scripts/pin_kubectl_images.py --manifest FILE          # a copy of it
    .venv/bin/python scripts/pin_kubectl_images.py --release 1.37=v1.37.1   # a minor it lacks, by tag only
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cdk.config import NEWEST_MINOR, OLDEST_MINOR  # noqa: E402

MANIFEST = (
    "https://raw.githubusercontent.com/kubernetes/k8s.io/main/registry.k8s.io/images/k8s-staging-kubernetes/images.yaml"
)
PIN_FILE = REPO / "charts" / "spiderpool-rdma" / "files" / "kubectl-images.json"
_FINAL = re.compile(r"^v1\.(\d+)\.(\d+)$")  # a release, not an alpha, beta or rc


def promoted(manifest: str) -> dict[str, tuple[str, str]]:
    """The newest release of each minor the manifest promotes as kubectl: {"1.36": (tag, digest)}."""
    entries = [entry for entry in yaml.safe_load(manifest) if entry["name"] == "kubectl"]
    if len(entries) != 1:
        raise SystemExit("the manifest holds no image named kubectl: is it k8s-staging-kubernetes/images.yaml?")
    newest: dict[str, tuple[int, str, str]] = {}
    for digest, tags in entries[0]["dmap"].items():
        for tag in tags:
            if (
                (match := _FINAL.match(tag))
                and (minor := f"1.{match[1]}")
                and int(match[2]) >= newest.get(minor, (-1, "", ""))[0]
            ):
                newest[minor] = (int(match[2]), tag, digest)
    return {minor: (tag, digest) for minor, (_, tag, digest) in newest.items()}


def pins(manifest: str, source: str, by_tag: dict[str, str]) -> dict[str, object]:
    """The pin file's content: every minor a cluster may have, from the manifest or else from `by_tag`."""
    found = promoted(manifest)
    releases: dict[str, dict[str, str]] = {}
    for minor in (f"1.{m}" for m in range(OLDEST_MINOR, NEWEST_MINOR + 1)):
        if minor in found:
            tag, digest = found[minor]
            releases[minor] = {"tag": tag, "digest": digest}
        elif minor in by_tag:
            releases[minor] = {"tag": by_tag[minor], "digest": ""}
        else:
            raise SystemExit(f"{source} promotes no kubectl release of {minor}: name one with --release {minor}=TAG")
        if not releases[minor]["tag"].startswith(f"v{minor}."):
            raise SystemExit(f"--release {minor}={releases[minor]['tag']}: the tag is not of minor {minor}")
    return {"source": source, "releases": releases}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", help="a copy of the promotion manifest (default: from GitHub)")
    parser.add_argument("--release", action="append", default=[], metavar="MINOR=TAG", help="a minor it lacks")
    args = parser.parse_args(argv)
    by_tag = dict(item.split("=", 1) for item in args.release)
    if args.manifest:
        source, text = args.manifest, Path(args.manifest).read_text()
    else:
        with urllib.request.urlopen(MANIFEST, timeout=30) as response:
            source, text = MANIFEST, response.read().decode()
    PIN_FILE.write_text(json.dumps(pins(text, source, by_tag), indent=1) + "\n")
    print(f"wrote {PIN_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
