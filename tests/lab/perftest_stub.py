#!/usr/bin/env python3
"""perftest's ib_write_bw, ib_read_bw and ib_send_bw as the lab's RDMA pods run them (this kernel has no RDMA).

Installed by tests/lab/rdma.py in the lab's image bin, first on the PATH of every exec, where Debian's perftest
package puts the real ones (/usr/bin/ib_*_bw). From linux-rdma/perftest at 00b55b6 (src/ paths below):
- the options are checked with perftest's own parser rules (tests/upstream/perftest.py: Debian bookworm's release,
  built with SRD as Debian's is); a refusal prints its line, then " Parser function exited with Error";
- a device missing from the sysfs tree ($SYSFS, where the validator's GID script reads it) prints what Debian's
  perftest 4.5 printed here without devices (tests/fixtures/perftest/no-device-debian-perftest-4.5.txt);
- the server listens on `-p`, the client connects; each sends its keys as perftest_communication.c
  ethernet_write_keys does (KEY_PRINT_FMT_GID, KEY_MSG_SIZE_GID 108 bytes with the NUL; the client writes first,
  ctx_hand_shake), its GID the entry at `-x` of the device's table;
- each side prints what write_bw.c prints at FULL_VERBOSITY: its own keys, then the peer's (ctx_print_pingpong_data:
  BASIC_ADDR_FMT, READ_FMT falling through to RDMA_FMT by verb, PERF_GID_FMT), RESULT_LINE, RESULT_FMT_G and
  RESULT_EXT, the report row (REPORT_FMT, REPORT_EXT), RESULT_LINE (perftest_parameters.h:191-232).
The figure is perftest's README example run (tests/fixtures/perftest/mb-sec.txt: 5000 iterations of 65536 B,
6034.72 MiB/s peak, 6033.76 average) as --report_gbits prints it (print_report_bw: format_factor 125000000), unless
the rates file beside this script holds a lower Gb/s for either end's address (tests/lab/rdma.py: a slow node).
Not ported: the test banner (ctx_print_test_info), the RDMA traffic itself and -D's wait (it answers at once), the
binary report exchange (xchg_bw_reports: a line of text here).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.upstream import perftest

RESULT_LINE = "-" * 87 + "\n"
RESULT_FMT_G = " #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]"
RESULT_EXT = REPORT_EXT = "\n"
REPORT_FMT = " %-7d    %-10d       %-7.2f            %-7.2f\t\t     %-7.6f"
KEY_MSG_SIZE_GID = 108
VALUED = {"-d", "-x", "-p", "-D", "-c", "-q"}  # the options bw_command passes that take a value
SIZE, ITERATIONS = 65536, 5000
PEAK_MIBS, AVERAGE_MIBS = 6034.72, 6033.76  # the README's run (mb-sec.txt)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "perftest"


def c_hex(value: int, width: int) -> str:
    """C's `%#0<width>x`: the 0x prefix counts in the width, and zero has none (printf's # flag)."""
    return f"{value:#0{width}x}" if value else "0" * width


@dataclass(frozen=True)
class Dest:
    """perftest's pingpong_dest, the fields its key message carries (perftest_communication.h)."""

    lid: int
    out_reads: int
    qpn: int
    psn: int
    rkey: int
    vaddr: int
    gid: bytes

    @classmethod
    def mine(cls, seed: int, gid: bytes) -> Dest:
        """LID 0 (RoCE), a QPN and PSN (lrand48() & 0xffffff in perftest), an rkey and a buffer address."""
        return cls(
            0,
            16,
            0x11 + seed % 0x1000,
            seed & 0xFFFFFF,
            0x1234 + seed % 0x100,
            0x7F0000000000 + seed % 0x1000 * 0x1000,
            gid,
        )

    def message(self) -> bytes:
        """KEY_PRINT_FMT_GID "%04x:%04x:%06x:%06x:%08x:%016llx:" then 16 x "%02x:" then "%08x:" (srqn), NUL-padded."""
        head = (self.lid, self.out_reads, self.qpn, self.psn, self.rkey, self.vaddr)
        text = "".join(f"{v:0{w}x}:" for v, w in zip(head, (4, 4, 6, 6, 8, 16), strict=True))
        text += "".join(f"{b:02x}:" for b in self.gid) + f"{0:08x}:"
        return text.encode().ljust(KEY_MSG_SIZE_GID, b"\0")

    @classmethod
    def parse(cls, raw: bytes) -> Dest:
        fields = raw.rstrip(b"\0").decode().split(":")
        lid, out_reads, qpn, psn, rkey, vaddr = (int(v, 16) for v in fields[:6])
        return cls(lid, out_reads, qpn, psn, rkey, vaddr, bytes(int(b, 16) for b in fields[6:22]))

    def printed(self, side: str, verb: str) -> str:
        """ctx_print_pingpong_data: BASIC_ADDR_FMT, then READ's outstanding reads falling through to RDMA_FMT."""
        line = f" {side} address: LID {c_hex(self.lid, 4)} QPN {c_hex(self.qpn, 6)} PSN {c_hex(self.psn, 6)}"
        if verb == "read":
            line += f" OUT {c_hex(self.out_reads, 4)}"
        if verb in ("read", "write"):
            line += f" RKey {c_hex(self.rkey, 8)} VAddr {c_hex(self.vaddr, 16)}"
        return line + "\n GID: " + ":".join(f"{b:02d}" for b in self.gid) + "\n"


def report(average_gbps: float, peak_gbps: float) -> str:
    msg_rate = average_gbps * 125000000 / SIZE / 1e6  # print_report_bw's msgRate_avg from the same cycles
    return REPORT_FMT % (SIZE, ITERATIONS, peak_gbps, average_gbps, msg_rate) + REPORT_EXT + RESULT_LINE


def figure(local: str, remote: str) -> tuple[float, float]:
    """(average, peak) Gb/s: the README's run, or the rates file's lower figure for either end."""
    average, peak = AVERAGE_MIBS * 0x100000 / 125000000, PEAK_MIBS * 0x100000 / 125000000
    rates_file = Path(sys.argv[0]).parent / "perftest-rates.json"
    rates = json.loads(rates_file.read_text()) if rates_file.exists() else {}
    slowest = min([average, *(rates[a] for a in (local, remote) if a in rates)])
    return slowest, peak * slowest / average


def gid_at(device: str, index: int) -> bytes | None:
    path = Path(os.environ.get("SYSFS", "/sys")) / "class/infiniband" / device / "ports/1/gids" / str(index)
    return bytes.fromhex(path.read_text().strip().replace(":", "")) if path.exists() else None


def main(argv: list[str]) -> int:
    verb = Path(argv[0]).name.removeprefix("ib_").removesuffix("_bw")
    refusal = perftest.refusal(perftest.DEBIAN_BOOKWORM, True, [f"ib_{verb}_bw", *argv[1:]])
    if refusal:
        print(f"{refusal}\n Parser function exited with Error", file=sys.stderr)
        return 1
    options, positional, args = {}, [], iter(argv[1:])
    for arg in args:
        if arg in VALUED:
            options[arg] = next(args)
        elif not arg.startswith("-"):
            positional.append(arg)
    server_ip = positional[0] if positional else None  # perftest's servername: the one argument after the options
    gid = gid_at(options["-d"], int(options["-x"]))
    if gid is None:
        sys.stdout.write((FIXTURES / "no-device-debian-perftest-4.5.txt").read_text())
        return 1
    port = int(options["-p"])
    if server_ip:
        conn = socket.create_connection((server_ip, port), timeout=30)
    else:
        with socket.create_server(("0.0.0.0", port)) as listener:
            conn, _ = listener.accept()
    with conn:
        mine = Dest.mine(zlib.crc32(f"{conn.getsockname()}".encode()), gid)
        if server_ip:
            conn.sendall(mine.message())
        theirs = Dest.parse(conn.recv(KEY_MSG_SIZE_GID, socket.MSG_WAITALL))
        if not server_ip:
            conn.sendall(mine.message())
        out = mine.printed("local", verb) + theirs.printed("remote", verb)
        sys.stdout.write(out + RESULT_LINE + RESULT_FMT_G + RESULT_EXT)
        if server_ip:
            average, peak = figure(conn.getsockname()[0], server_ip)
            conn.sendall(f"{average} {peak}\n".encode())
        else:
            average, peak = (float(v) for v in conn.makefile().readline().split())
    sys.stdout.write(report(average, peak))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
