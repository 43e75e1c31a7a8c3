"""The ping parser on real outputs, without namespaces (test_probes.py produces them live, as root)."""

from __future__ import annotations

from spider_validate.probes import reach as probes

# Real outputs (iputils 20221126 with -w after its 1st and 4th requests were dropped; busybox 1.35), a line that
# reports an error added: only `N bytes from` lines are replies.
IPUTILS_SENT_ON = """PING 198.18.1.2 (198.18.1.2) 56(84) bytes of data.
From 198.18.1.1 icmp_seq=1 Destination Host Unreachable
64 bytes from 198.18.1.2: icmp_seq=2 ttl=64 time=0.049 ms
64 bytes from 198.18.1.2: icmp_seq=3 ttl=64 time=0.047 ms
64 bytes from 198.18.1.2: icmp_seq=5 ttl=64 time=0.045 ms

--- 198.18.1.2 ping statistics ---
5 packets transmitted, 3 received, 40% packet loss, time 824ms
rtt min/avg/max/mdev = 0.045/0.047/0.049/0.001 ms
"""
BUSYBOX = """PING 127.0.0.1 (127.0.0.1): 56 data bytes
64 bytes from 127.0.0.1: seq=0 ttl=64 time=0.045 ms
64 bytes from 127.0.0.1: seq=1 ttl=64 time=0.049 ms

--- 127.0.0.1 ping statistics ---
2 packets transmitted, 2 packets received, 0% packet loss
round-trip min/avg/max = 0.045/0.047/0.049 ms
"""


def test_replies_are_the_probes_answered_numbered_from_zero_in_both_pings() -> None:
    iputils, busybox = probes.parse_ping(IPUTILS_SENT_ON), probes.parse_ping(BUSYBOX)
    assert iputils is not None and iputils.replied == {1, 2, 4} and iputils.unanswered(3) == 1
    assert busybox is not None and busybox.replied == {0, 1} and busybox.unanswered(2) == 0
