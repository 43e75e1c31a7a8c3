#!/usr/bin/env python3
"""A recording stand-in for every system command the bootstrap calls (symlinked under each name).

Appends `name args...` to $STUB_DIR/calls.log, fails when the call matches $STUB_FAIL, and otherwise
answers like the real command where the bootstrap reads the answer.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

STUB = Path(os.environ["STUB_DIR"])
ROOT = Path(os.environ.get("SPR_ROOT", "/"))
JOIN = (
    "kubeadm join api.test.internal:6443 --token abcdef.0123456789abcdef "
    "--discovery-token-ca-cert-hash sha256:" + "a" * 64 + " "
)


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("stub\n")


def main() -> int:
    name = Path(sys.argv[0]).name
    args = sys.argv[1:]
    line = " ".join([name, *args])
    with (STUB / "calls.log").open("a") as log:
        log.write(line + "\n")
    fail = os.environ.get("STUB_FAIL")
    if fail and re.search(fail, line):
        print(f"{name}: simulated failure", file=sys.stderr)
        return 1
    if name == "gpg" and "--show-keys" in args:
        print(f"fpr:::::::::{os.environ['STUB_GPG_FPR_' + ('EFA' if 'aws-efa-installer.key' in line else 'K8S')]}:")
    elif name == "containerd" and args[:2] == ["config", "default"]:
        print("    SystemdCgroup = false")
    elif name == "kubeadm" and args[:1] == ["init"] and "phase" not in args:
        touch(ROOT / "etc/kubernetes/admin.conf")
    elif name == "kubeadm" and args[:1] == ["join"]:
        touch(ROOT / "etc/kubernetes/kubelet.conf")
    elif name == "kubeadm" and args[:2] == ["token", "create"]:
        print(JOIN)
    elif name == "kubeadm" and "upload-certs" in args:
        print("[upload-certs] Using certificate key:\n" + "b" * 64)
    elif name == "aws" and args[:2] == ["ssm", "get-parameter"]:
        param = args[args.index("--name") + 1].rsplit("/", 1)[-1]
        polls = STUB / f"polls-{param}"
        count = int(polls.read_text()) + 1 if polls.exists() else 1
        polls.write_text(str(count))
        ready_after = int(os.environ.get("STUB_JOIN_READY_AFTER", "1"))
        print(JOIN if 0 < ready_after <= count else "pending")
    elif name == "aws" and args[:2] == ["ssm", "put-parameter"]:
        param = args[args.index("--name") + 1].rsplit("/", 1)[-1]
        value = args[args.index("--value") + 1].removeprefix("file://")
        (STUB / f"ssm-{param}").write_text(Path(value).read_text())
    elif name == "ip" and "show" in args:
        print(os.environ.get("STUB_IP_ADDRS", ""))
    elif name == "tar" and "-xzf" in args:
        installer = Path(args[args.index("-C") + 1]) / "aws-efa-installer" / "efa_installer.sh"
        installer.parent.mkdir(parents=True, exist_ok=True)
        installer.write_text(f'#!/bin/sh\necho efa_installer.sh "$@" >> {STUB}/calls.log\n')
        installer.chmod(0o755)
    elif name == "sleep":
        time.sleep(0.01)
    return 0


if __name__ == "__main__":
    sys.exit(main())
