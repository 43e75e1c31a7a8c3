"""Spiderpool's address notation: a pool's `ips` and `excludeIPs` are single addresses or `a-b` ranges.

Ranges are reasoned about by their bounds, never expanded whole: a pool may span a /8, or an IPv6 /64.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator


def bounds(entry: str) -> tuple[int, int]:
    """(first, last) of `a` or `a-b` as integers; ValueError saying what is wrong."""
    if not isinstance(entry, str):
        raise ValueError(f"{entry!r} is not an address or a range")
    first, _, last = entry.partition("-")
    try:
        a, b = ipaddress.ip_address(first.strip()), ipaddress.ip_address((last or first).strip())
    except ValueError:
        raise ValueError(f"{entry!r} is not an address or an a-b range") from None
    if a.version != b.version or int(a) > int(b):
        raise ValueError(f"{entry!r}: the range's ends are of two IP versions or in the wrong order")
    return int(a), int(b)


def iterate(ranges: Iterable[str]) -> Iterator[str]:
    """The entries' addresses in order, one at a time (take what you need with itertools.islice)."""
    for entry in ranges:
        a, b = bounds(entry)
        v4 = ipaddress.ip_address(entry.partition("-")[0].strip()).version == 4
        for i in range(a, b + 1):
            yield str(ipaddress.IPv4Address(i) if v4 else ipaddress.IPv6Address(i))


def expand(ranges: Iterable[str]) -> list[str]:
    """Every address the entries name, in order: for small pools only."""
    return list(iterate(ranges))


def count(ranges: Iterable[str]) -> int:
    return sum(b - a + 1 for a, b in map(bounds, ranges))


def contains(ranges: Iterable[str], ip: str) -> bool:
    """Whether `ip` is one of the entries' addresses, without expanding them."""
    addr = int(ipaddress.ip_address(ip))
    return any(a <= addr <= b for a, b in map(bounds, ranges))
