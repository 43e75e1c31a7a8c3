"""An ICMP echo responder whose replies come late from a given sequence number on: a busy node, for test_probes.py.

This kernel has no sch_netem (nor prio or tc classifiers) to delay chosen packets, so the namespace's own echo
replies are switched off (net.ipv4.icmp_echo_ignore_all=1) and this process answers instead, as the kernel does
(linux net/ipv4/icmp.c, icmp_echo: the request's identifier, sequence number and data sent back as type 0, RFC 792),
holding back the replies to sequence numbers >= FIRST by DELAY seconds. One thread sends them in the order the
requests came, as a delaying link keeps its order (timers could swap two replies on a busy machine).

    python late_echo.py FIRST DELAY    # prints "ready" once its raw socket receives
"""

from __future__ import annotations

import queue
import socket
import struct
import sys
import threading
import time

ECHO_REQUEST, ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's complement sum of 16-bit words."""
    padded = data + b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def reply_to(icmp: bytes) -> bytes:
    rest = icmp[4:]  # identifier, sequence number, data
    return struct.pack("!BBH", ECHO_REPLY, 0, checksum(struct.pack("!BBH", ECHO_REPLY, 0, 0) + rest)) + rest


def send_in_order(sock: socket.socket, replies: queue.Queue[tuple[float, bytes, str]]) -> None:
    while True:
        due, reply, destination = replies.get()
        time.sleep(max(0.0, due - time.monotonic()))
        sock.sendto(reply, (destination, 0))


def main() -> None:
    first, delay = int(sys.argv[1]), float(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    replies: queue.Queue[tuple[float, bytes, str]] = queue.Queue()
    threading.Thread(target=send_in_order, args=(sock, replies), daemon=True).start()
    print("ready", flush=True)
    while True:
        packet, (source, _) = sock.recvfrom(65535)
        icmp = packet[(packet[0] & 0x0F) * 4 :]  # after the IP header (IHL, in 32-bit words)
        if len(icmp) < 8 or icmp[0] != ECHO_REQUEST:
            continue
        (sequence,) = struct.unpack("!H", icmp[6:8])
        replies.put((time.monotonic() + (delay if sequence >= first else 0.0), reply_to(icmp), source))


if __name__ == "__main__":
    main()
