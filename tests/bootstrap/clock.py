"""A virtual clock for the bootstrap in its sandbox: `sleep` adds to it instead of sleeping, `date` reads it, so that
hours of waiting and retrying run in seconds; and systemd's own reading of the time spans a unit sets."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.bootstrap.sandbox import Sandbox

#: coreutils' sleep on a virtual clock: recorded as the stub records a call, its seconds (each argument a number with
#: an optional s, m, h or d suffix, summed: coreutils src/sleep.c, apply_suffix) added to $STUB_DIR/clock instead of
#: slept, and the new time recorded as `clock SECONDS`.
CLOCK_SLEEP = r"""#!/bin/sh
echo "sleep $*" >>"$STUB_DIR/calls.log"
exec /usr/bin/awk -v clock="$STUB_DIR/clock" -v calls="$STUB_DIR/calls.log" -v args="$*" 'BEGIN {
  split("s 1 m 60 h 3600 d 86400", u, " "); for (i = 1; i < 8; i += 2) scale[u[i]] = u[i + 1]
  n = split(args, arg, " "); total = 0
  for (i = 1; i <= n; i++) {
    s = arg[i]; unit = substr(s, length(s))
    if (unit in scale) s = substr(s, 1, length(s) - 1); else unit = "s"
    if (s !~ /^([0-9]+[.]?[0-9]*|[.][0-9]+)$/) { print "sleep: invalid time interval " arg[i] > "/dev/stderr"; exit 1 }
    total += s * scale[unit]
  }
  now = 0; if ((getline line < clock) > 0) now = line; close(clock)
  now += total; print now > clock; print "clock " now >> calls
}'
"""
#: date at the virtual clock's time: the real date, told the time (now plus what the sleeps slept). An option that
#: sets the time itself would override it: refused, so that a script using one fails here instead of reading real time.
CLOCK_DATE = r"""#!/bin/sh
for a in "$@"; do
  case "$a" in -d*|--date*|-r*|--reference*|-s*|--set*|-f*|--file*) echo "date (virtual clock): $a" >&2; exit 2;; esac
done
offset="$(cat "$STUB_DIR/clock" 2>/dev/null || echo 0)"
exec /usr/bin/date -d "@$(/usr/bin/awk -v o="$offset" -v n="$(/usr/bin/date +%s)" 'BEGIN { printf "%d", n + o }')" "$@"
"""


def seconds(timespan: str) -> float:
    """A systemd time span (systemd.time(7)) as systemd itself reads it."""
    out = subprocess.run(["systemd-analyze", "timespan", timespan], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"μs: (\d+)", out)[1]) / 1e6  # type: ignore[index]


def unit_settings(path: Path, section: str) -> dict[str, str]:
    """`Key=value` lines of one section of a systemd unit file."""
    settings, current = {}, ""
    for line in path.read_text().splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif "=" in line and not line.startswith("#") and current == section:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def use_virtual_clock(node: Sandbox) -> None:
    """sleep and date of the node on the virtual clock, which starts at 0 (the real time)."""
    for tool, script in (("sleep", CLOCK_SLEEP), ("date", CLOCK_DATE)):
        path = node.root / "usr/bin" / tool
        path.unlink()
        path.write_text(script)
        path.chmod(0o755)


def now(node: Sandbox) -> float:
    """Seconds the node's sleeps (and `advance`) added to the clock."""
    clock = node.stubs / "clock"
    return float(clock.read_text()) if clock.exists() else 0.0


def advance(node: Sandbox, by: float) -> None:
    """Time passing outside the node's scripts (systemd's RestartSec between two runs of a unit)."""
    (node.stubs / "clock").write_text(f"{now(node) + by}\n")
