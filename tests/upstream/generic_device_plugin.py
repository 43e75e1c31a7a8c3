"""What squat/generic-device-plugin 0.1.0 advertises, from github.com/squat/generic-device-plugin tag 0.1.0.

- main.go:82-102: `--domain` must be a DNS subdomain; each `--device` (JSON or YAML) becomes the resource
  `<domain>/<name>`.
- deviceplugin/path.go:31-56: a path's type defaults to Device, its permissions to "mrw", its limit to 1; a
  group's count to 1 (config.go:47-49).
- deviceplugin/path.go:74-160 (discoverPath): each path of a group is globbed (sorted); the group yields as many
  devices as its shortest match list (times limit), each device taking the i-th match of every path; each of those
  is advertised `count` times. A path without a match (and not optional) makes the group yield nothing.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any


def advertised(args: list[str], dev_files: list[str]) -> dict[str, list[list[str]]]:
    """resource -> its devices, each the host paths handed to a pod, for a node whose device nodes are dev_files."""
    domain = args[args.index("--domain") + 1]
    out: dict[str, list[list[str]]] = {}
    for i, arg in enumerate(args):
        if arg != "--device":
            continue
        spec: dict[str, Any] = json.loads(args[i + 1])
        devices: list[list[str]] = []
        for group in spec["groups"]:
            matches = [sorted(f for f in dev_files if fnmatch.fnmatchcase(f, p["path"])) for p in group["paths"]]
            length = min((len(m) * p.get("limit", 1) for m, p in zip(matches, group["paths"], strict=True)), default=0)
            for index in range(length):
                devices += [[m[index % len(m)] for m in matches]] * group.get("count", 1)
        out[f"{domain}/{spec['name']}"] = devices
    return out
