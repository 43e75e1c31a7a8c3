"""RDMA commands run in pods and their parsers: devices, the RoCEv2 GID index, perftest bandwidth tables."""

from __future__ import annotations

import re
from dataclasses import dataclass

MIB = 1024 * 1024

# Prints "DEVICE INDEX GID" of the first RoCE v2 GID that maps an IPv4 address (not index 0, which is RoCE v1
# or a link-local GID on most NICs); exits 1 when there is none. SYSFS is for tests on a constructed tree.
GID_SCRIPT = r"""
root="${SYSFS:-/sys}/class/infiniband"
for t in "$root"/*/ports/1/gid_attrs/types/*; do
  [ "$(cat "$t" 2>/dev/null)" = "RoCE v2" ] || continue
  index="${t##*/}"; dev="${t%/ports/*}"; dev="${dev##*/}"
  gid="$(cat "$root/$dev/ports/1/gids/$index" 2>/dev/null)"
  case "$gid" in 0000:0000:0000:0000:0000:ffff:*) echo "$dev $index $gid"; exit 0 ;; esac
done
exit 1
"""


@dataclass(frozen=True)
class Bandwidth:
    size_bytes: int
    peak_gbps: float
    average_gbps: float
    unit: str  # the table's own unit: MB/sec (MiB/s), MiB/sec or Gb/sec


class PerftestError(Exception):
    """perftest ran but measured nothing; the message is its own error line."""


_HEADER = re.compile(r"BW peak\[(MB/sec|MiB/sec|Gb/sec)\]\s+BW average\[(?:MB/sec|MiB/sec|Gb/sec)\]")
_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)(?:\s+[\d.]+)?\s*$")
_ERRORS = (
    "Completion with error",
    "Failed to complete",
    "Couldn't connect",
    "Unable to init the socket",
    "Did not detect devices",
    "Unable to find the Infiniband/RoCE device",
    "Couldn't get context",
    "Failed to modify QP",
    "Unable to open file",
)


def to_gbps(value: float, unit: str) -> float:
    return value if unit == "Gb/sec" else value * MIB * 8 / 1e9


def parse_perftest(output: str) -> Bandwidth:
    """The last row of ib_*_bw's table (the largest message size), in Gb/s; PerftestError when it failed."""
    errors = [line.strip() for line in output.splitlines() if any(e in line for e in _ERRORS)]
    if errors:
        raise PerftestError("; ".join(errors))
    header = _HEADER.search(output)
    if not header:
        raise PerftestError("no bandwidth table in the output")
    rows = [m for line in output[header.end() :].splitlines() if (m := _ROW.match(line))]
    if not rows:
        raise PerftestError("the bandwidth table has no row")
    size, _, peak, average = rows[-1].groups()
    unit = header.group(1)
    return Bandwidth(int(size), to_gbps(float(peak), unit), to_gbps(float(average), unit), unit)


def parse_devices(ibv_devices_output: str) -> list[str]:
    """Device names from `ibv_devices` (a header, a dashed line, then `name  GUID` rows)."""
    names = []
    for line in ibv_devices_output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] not in {"device", "------"} and re.fullmatch(r"[0-9a-f]{16}", parts[1]):
            names.append(parts[0])
    return names


def parse_gid(output: str) -> tuple[str, int]:
    """`DEVICE INDEX GID` from GID_SCRIPT -> (device, index)."""
    dev, index, _ = output.split()
    return dev, int(index)


def write_bw_command(
    mode: str, device: str, gid_index: int | None, port: int, seconds: int, server_ip: str | None = None
) -> list[str]:
    """ib_write_bw as server (no address) or client; EFA speaks SRD, the others RC with the RoCEv2 GID."""
    cmd = ["ib_write_bw", "-d", device, "-p", str(port), "-D", str(seconds), "-F", "--report_gbits"]
    if mode == "efa":
        cmd += ["-c", "SRD"]
    elif gid_index is not None:
        cmd += ["-x", str(gid_index)]
    return [*cmd, server_ip] if server_ip else cmd
