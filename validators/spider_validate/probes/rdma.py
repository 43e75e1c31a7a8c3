"""RDMA commands run in pods and their parsers: devices, the RoCEv2 GID index, perftest bandwidth tables."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from spider_validate.probes.output import reads

MIB = 1024 * 1024

# Prints `DEVICE PORT INDEX GID NDEV TYPE` for every GID the pod's RDMA devices hold, in no useful order (the shell's
# glob sorts 10 before 2): the choice is made by address, in Python. Linux drivers/infiniband/core/sysfs.c: gids/N
# shows `%pI6` (a free entry shows zeros), gid_attrs/ndevs/N the entry's netdev and gid_attrs/types/N "IB/RoCE v1" or
# "RoCE v2" (cache.c gid_type_str), and reading either of a free entry fails (EINVAL). `read`, a builtin: a rxe
# device has 1024 entries. SYSFS is for tests on a constructed tree.
GID_TABLE_SCRIPT = r"""
root="${SYSFS:-/sys}/class/infiniband"
for g in "$root"/*/ports/*/gids/*; do
  read -r gid 2>/dev/null < "$g" || continue
  [ "$gid" = 0000:0000:0000:0000:0000:0000:0000:0000 ] && continue
  index="${g##*/}"; port="${g%/gids/*}"; dev="${port%/ports/*}"; dev="${dev##*/}"; port="${port##*/}"
  ndev=""; type=""
  read -r ndev 2>/dev/null < "$root/$dev/ports/$port/gid_attrs/ndevs/$index"
  read -r type 2>/dev/null < "$root/$dev/ports/$port/gid_attrs/types/$index"
  echo "$dev $port $index $gid ${ndev:--} ${type:--}"
done
"""
ROCE_V2 = "RoCE v2"


@dataclass(frozen=True)
class Gid:
    """One entry of an RDMA device's GID table, as sysfs shows it."""

    device: str
    port: int
    index: int
    gid: str  # sysfs's form: eight groups of four hex digits
    ndev: str  # the netdev the entry belongs to ("-": none or unreadable)
    type: str  # "RoCE v2", "IB/RoCE v1", "-" (EFA's and IB's entries have no RoCE type to read... or it failed)

    @property
    def address(self) -> str:
        """The IP address the GID stands for (an IPv4-mapped GID is its IPv4 address)."""
        ip = ipaddress.IPv6Address(bytes.fromhex(self.gid.replace(":", "")))
        return str(ip.ipv4_mapped or ip)

    def describe(self) -> str:
        return f"{self.device} port {self.port} GID index {self.index} ({self.address}, {self.type}, {self.ndev})"


def sysfs_gid(address: str) -> str:
    """The GID sysfs shows for an IP address (IPv4: the IPv4-mapped IPv6 address, rdma_ip2gid)."""
    ip = ipaddress.ip_address(address)
    packed = (ipaddress.IPv6Address(f"::ffff:{ip}") if ip.version == 4 else ip).packed
    return ":".join(packed[i : i + 2].hex() for i in range(0, 16, 2))


@reads("the GID table script")
def parse_gid_table(output: str) -> list[Gid]:
    entries = []
    for line in output.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[1].isdigit() and parts[2].isdigit():
            entries.append(Gid(parts[0], int(parts[1]), int(parts[2]), parts[3], parts[4], parts[5]))
    return sorted(entries, key=lambda g: (g.device, g.port, g.index))


def roce_gid(table: list[Gid], address: str) -> Gid | str:
    """The RoCE v2 GID of `address` (the one the pod is meant to use), or why there is none."""
    wanted = sysfs_gid(address)
    found = [g for g in table if g.gid == wanted]
    if v2 := [g for g in found if g.type == ROCE_V2]:
        return v2[0]
    if found:
        return f"{address} has no RoCE v2 GID, only {', '.join(g.describe() for g in found)}"
    others = ", ".join(
        g.describe() for g in table if g.type == ROCE_V2 and ipaddress.ip_address(g.address).version == 4
    )
    return f"no RDMA device of the pod has a GID for {address} (its RoCE v2 IPv4 GIDs: {others or 'none'})"


def efa_gid(table: list[Gid], device: str) -> Gid | str:
    """An EFA device's GID: its one entry, index 0 (EFA's address; perftest must be given it with -x 0)."""
    entry = next((g for g in table if g.device == device and g.index == 0), None)
    return entry or f"{device} has no GID at index 0 (GIDs seen: {', '.join(g.describe() for g in table) or 'none'})"


# perftest_communication.c ctx_print_pingpong_data with communication.h PERF_GID_FMT: each side's GID as 16 decimal
# bytes after " local address: ..." and " remote address: ..." lines (printed when a GID index is in use).
_SIDE = re.compile(r"^\s*(local|remote) address:", re.M)
_GID_LINE = re.compile(r"^\s*GID:\s*((?:\d{1,3}:){15}\d{1,3})\s*$", re.M)


@reads("perftest")
def perftest_gids(output: str) -> dict[str, str]:
    """side ("local", "remote") -> the GID perftest says it used, in sysfs's form (the first of each side)."""
    gids: dict[str, str] = {}
    for side in _SIDE.finditer(output):
        line = _GID_LINE.search(output, side.end())
        if line and side.group(1) not in gids:
            raw = bytes(int(b) for b in line.group(1).split(":"))
            gids[side.group(1)] = ":".join(raw[i : i + 2].hex() for i in range(0, 16, 2))
    return gids


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


@reads("ib_write_bw")
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


@reads("ibv_devices")
def parse_devices(ibv_devices_output: str) -> list[str]:
    """Device names from `ibv_devices` (a header, a dashed line, then `name  GUID` rows)."""
    names = []
    for line in ibv_devices_output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] not in {"device", "------"} and re.fullmatch(r"[0-9a-f]{16}", parts[1]):
            names.append(parts[0])
    return names


# EFA: the verb follows the device's capabilities (rdma-core providers/efa/efadv.h: EFADV_DEVICE_ATTR_CAPS_RDMA_READ =
# 1 << 0, EFADV_DEVICE_ATTR_CAPS_RDMA_WRITE = 1 << 3; SEND over SRD needs neither) and what the image's perftest
# accepts over SRD (perftest_parameters.c change_conn_type: by release SEND; SEND/READ; SEND/READ/WRITE; and nothing
# without HAVE_SRD). One-sided verbs first: the receiver posts nothing per message.
EFA_CAPS = {"read": 1 << 0, "write": 1 << 3}
VERBS = ("write", "read", "send")

# The device's efadv_query_device() device_caps, read in the pod through rdma-core's own binding (python3-pyverbs,
# pyverbs/providers/efa/efadv.pyx: EfaContext(name).query_efa_device().device_caps).
EFA_CAPS_CODE = (
    "import sys; from pyverbs.providers.efa.efadv import EfaContext; "
    "print(EfaContext(name=sys.argv[1]).query_efa_device().device_caps)"
)

# perftest's parser refuses a verb it cannot run over SRD before it looks for a device: given a device that does not
# exist, each tool either prints that refusal or fails to find the device, and never listens.
PROBE_DEVICE = "spider-validate-no-such-device"
SRD_PROBE_SCRIPT = rf"""
for verb in write read send; do
  echo "== $verb"; ib_${{verb}}_bw -c SRD -d {PROBE_DEVICE} 2>&1 | head -n 5
done
"""
_SRD_REFUSALS = ("SRD connection only possible", "SRD not detected", "Invalid Connection type", "not found")


def efa_caps_command(device: str) -> list[str]:
    return ["python3", "-c", EFA_CAPS_CODE, device]


def srd_verbs(probe_output: str) -> dict[str, str]:
    """verb -> "" when the image's perftest accepts it over SRD, else the line it refused it with."""
    verdicts: dict[str, str] = {}
    for block in probe_output.split("== ")[1:]:
        verb, _, text = block.partition("\n")
        refusal = next((line.strip() for line in text.splitlines() if any(r in line for r in _SRD_REFUSALS)), "")
        if any(m in text for m in (f"{PROBE_DEVICE} not found", "Did not detect", "No IB devices")):
            refusal = ""  # it went on to look for the device (ctx_find_dev): the options passed
        verdicts[verb.strip()] = refusal or ("" if text.strip() else "no output (no perftest?)")
    return verdicts


def choose_efa_verb(device_caps: int, accepted: dict[str, str]) -> tuple[str, str] | str:
    """(verb, why) for EFA from the device's caps and the image's perftest (srd_verbs), or why no verb can run."""
    why = []
    for verb in VERBS:
        if verb in EFA_CAPS and not device_caps & EFA_CAPS[verb]:
            why.append(f"no RDMA {verb} on this EFA (device_caps {device_caps:#x})")
        elif accepted.get(verb, "not probed"):
            why.append(f"the image's ib_{verb}_bw refuses SRD ({accepted.get(verb, 'not probed')})")
        else:
            return verb, "; ".join([*why, f"{verb} over SRD"])
    return "no verb runs over SRD here: " + "; ".join(why)


def bw_command(
    verb: str, mode: str, device: str, gid_index: int, port: int, seconds: int, server_ip: str | None = None
) -> list[str]:
    """ib_<verb>_bw as server (no address) or client with the GID index of the address it is meant to use; EFA
    speaks SRD and needs its GID index (0) given, else its address handle has no destination (perftest issue 113)."""
    cmd = [f"ib_{verb}_bw", "-d", device, "-x", str(gid_index), "-p", str(port), "-D", str(seconds), "-F"]
    cmd += ["--report_gbits", *(["-c", "SRD"] if mode == "efa" else [])]
    return [*cmd, server_ip] if server_ip else cmd


def data_flow(verb: str) -> tuple[str, str]:
    """(the role whose device sends the data, the one whose device receives it): a read pulls from the server."""
    return ("server", "client") if verb == "read" else ("client", "server")
