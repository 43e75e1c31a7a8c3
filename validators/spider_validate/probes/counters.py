"""Proof of fabric: an RDMA device's traffic counters, read before and after a bandwidth test, as each driver
names them. A tool that silently fell back to TCP leaves them still.

Where each name comes from (Linux):
- EFA: drivers/infiniband/hw/efa/efa_verbs.c, EFA_DEFINE_STATS (lines 34-37 at commit 031616c4): `tx_bytes`,
  `tx_pkts`, `rx_bytes`, `rx_pkts`, in ports/1/hw_counters/.
- rxe (Soft-RoCE): drivers/infiniband/sw/rxe/rxe_hw_counters.c, rxe_counter_name (lines 37-38 at commit
  0f2cb7cf): `sent_pkts`, `rcvd_pkts`, packets only, in ports/1/hw_counters/.
- mlx5 and every IB/RoCE port with a PMA: Documentation/ABI/stable/sysfs-class-infiniband, "Data info":
  ports/1/counters/`port_xmit_data` and `port_rcv_data`, "Total number of data octets, divided by 4 (lanes)".
"""

from __future__ import annotations

from dataclasses import dataclass

from spider_validate.probes.output import reads

# (directory under ports/1, transmitted, received, bytes per unit; 0 = packets). The first present pair counts.
PAIRS = (
    ("hw_counters", "tx_bytes", "rx_bytes", 1),  # EFA
    ("counters", "port_xmit_data", "port_rcv_data", 4),  # PMA: octets / 4
    ("hw_counters", "sent_pkts", "rcvd_pkts", 0),  # rxe
)
# EFA's counters of one verb (efa_verbs.c EFA_DEFINE_PORT_STATS, efa_admin_cmds_defs.h efa_admin_messages_stats,
# rdma_read_stats, rdma_write_stats): (data sender's, data receiver's). Checked before the port totals above, so the
# proof counts the verb perftest ran: a read's data leaves the responder (read_resp) and arrives at the requester.
VERB_PAIRS = {
    "send": ("hw_counters", "send_bytes", "recv_bytes", 1),
    "write": ("hw_counters", "rdma_write_bytes", "rdma_write_recv_bytes", 1),
    "read": ("hw_counters", "rdma_read_resp_bytes", "rdma_read_bytes", 1),
}
MAX_PAYLOAD = 4096  # the largest IB MTU: a packet carries at most this much (IBTA path MTU 4096)
FRACTION = 0.5  # the device must have carried at least half of what the tool reports

# Prints `DIR/NAME VALUE` for every counter of the device's port 1. SYSFS is for tests on a constructed tree.
SCRIPT = r"""
port="${SYSFS:-/sys}/class/infiniband/$1/ports/1"
[ -d "$port" ] || { echo "no port 1 under $port" >&2; exit 1; }
for f in "$port"/counters/* "$port"/hw_counters/*; do
  [ -f "$f" ] || continue
  v="$(cat "$f" 2>/dev/null)" && echo "${f#$port/} $v"
done
"""


def command(device: str) -> list[str]:
    return ["sh", "-c", SCRIPT, "counters", device]


@reads("the counters script")
def parse(output: str) -> dict[str, int]:
    counters = {}
    for line in output.splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            counters[name] = int(value)
    return counters


@dataclass(frozen=True)
class Traffic:
    sent: int
    received: int
    unit: str  # bytes | packets
    source: str  # the counters' names

    def bytes_up_to(self, count: int) -> int:
        """The most bytes `count` can stand for: packets carry at most MAX_PAYLOAD each (so few packets can
        never account for many bytes, which is what the check needs)."""
        return count if self.unit == "bytes" else count * MAX_PAYLOAD


def delta(before: dict[str, int], after: dict[str, int], verb: str = "") -> Traffic | None:
    """The traffic between two readings from the first counter pair the driver has (the verb's own first); None when
    it has none."""
    for directory, tx, rx, scale in ((VERB_PAIRS[verb],) if verb in VERB_PAIRS else ()) + PAIRS:
        keys = (f"{directory}/{tx}", f"{directory}/{rx}")
        if all(k in before and k in after for k in keys):
            sent, received = (after[k] - before[k] for k in keys)
            unit = "packets" if scale == 0 else "bytes"
            return Traffic(sent * max(scale, 1), received * max(scale, 1), unit, " and ".join(keys))
    return None


def crossed(tool_bytes: float, sender: Traffic, receiver: Traffic) -> tuple[bool, str]:
    """Whether the sender's device sent and the receiver's received at least FRACTION of what the tool reports."""
    need = tool_bytes * FRACTION
    sent, received = sender.bytes_up_to(sender.sent), receiver.bytes_up_to(receiver.received)
    what = (
        f"the tool reports {tool_bytes / 1e6:.1f} MB; the devices counted {sender.sent} {sender.unit} sent "
        f"({sender.source}) and {receiver.received} {receiver.unit} received"
    )
    if sent >= need and received >= need:
        return True, what
    return False, f"{what}: less than {FRACTION:g} of it crossed the RDMA device (a fallback to TCP?)"
