"""Spiderpool's address notation: a pool's `ips` and `excludeIPs` are single addresses or `a-b` ranges."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def expand(ranges: Iterable[str]) -> list[str]:
    """Every address the entries name, in order."""
    out: list[str] = []
    for entry in ranges:
        first, _, last = entry.partition("-")
        a, b = int(ipaddress.ip_address(first)), int(ipaddress.ip_address(last or first))
        out += [str(ipaddress.ip_address(i)) for i in range(a, b + 1)]
    return out


def contains(ranges: Iterable[str], ip: str) -> bool:
    """Whether `ip` is one of the entries' addresses, without expanding them."""
    addr = int(ipaddress.ip_address(ip))
    for entry in ranges:
        first, _, last = entry.partition("-")
        if int(ipaddress.ip_address(first)) <= addr <= int(ipaddress.ip_address(last or first)):
            return True
    return False
