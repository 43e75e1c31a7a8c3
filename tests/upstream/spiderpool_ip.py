"""Spiderpool v1.2.2's pkg/ip, the address rules its IPPool webhook calls (spidernet-io/spiderpool tag v1.2.2), on
the Go parsers they use, with the errors (and `errors.Is` sentinels) upstream returns.

Go's parsers, as the go 1.25 toolchain of go.mod builds them: net.ParseIP is netip.ParseAddr without a zone (IPv4
octets without leading zeros); net.ParseCIDR is an address, '/', and decimal digits up to the address' bit length
(error "invalid CIDR address: S"); govalidator.IsIPv4/IsIPv6 (vendor/github.com/asaskevich/govalidator/validator.go:
819-828) are net.ParseIP plus a '.' or a ':' in the text. An IPv6 address written with an embedded IPv4 part
("::ffff:1.2.3.4", "::1.2.3.4") is both to govalidator and an IPv4 address to net.IP's To4: the model refuses to
judge one (NotImplementedError) rather than guess.

Ranges are kept as integer intervals where upstream enumerates every address and only the set matters (MergeIPRanges,
the webhook's membership checks): the results are the same.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

from tests.upstream.apimachinery import go_quote

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# pkg/ip/errors.go:8-15: the sentinels (errors.Is)
ERR_INVALID_IP_VERSION = "invalid IP version"
ERR_INVALID_IP_RANGE_FORMAT = "invalid IP range format"
ERR_INVALID_IP_FORMAT = "invalid IP format"
ERR_INVALID_CIDR_FORMAT = "invalid CIDR format"
ERR_INVALID_IP = "invalid IP"


class GoError(ValueError):
    """An error upstream returns: `sentinel` is the pkg/ip error it wraps (None for the Go library's own)."""

    def __init__(self, message: str, sentinel: str | None = None) -> None:
        super().__init__(message)
        self.sentinel = sentinel


def parse_ip(text: str) -> Address | None:
    """net.ParseIP."""
    if "." in text and ":" in text:
        raise NotImplementedError(f"an IPv6 address with an embedded IPv4 part is not modeled: {text!r}")
    if "%" in text:  # netip.ParseAddr accepts a zone, net.ParseIP refuses it; so would Python's parser accept it
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_cidr(text: str) -> tuple[Address, Network]:
    """net.ParseCIDR: the address as written and its network."""
    addr, slash, mask = text.partition("/")
    ip = parse_ip(addr) if slash else None
    if ip is None or not re.fullmatch("[0-9]+", mask) or int(mask) > ip.max_prefixlen:
        raise GoError(f"invalid CIDR address: {text}")
    return ip, ipaddress.ip_network((ip, int(mask)), strict=False)


def is_ipv4_text(text: str) -> bool:
    """govalidator.IsIPv4."""
    return parse_ip(text) is not None and "." in text


def is_ipv6_text(text: str) -> bool:
    """govalidator.IsIPv6."""
    return parse_ip(text) is not None and ":" in text


def is_ip_version(version: int) -> None:
    """ip.go:22-28 IsIPVersion."""
    if version not in (4, 6):
        raise GoError(f"{ERR_INVALID_IP_VERSION} '{version}'", ERR_INVALID_IP_VERSION)


def _cidr_of_version(text: str, version: int) -> bool:
    try:
        return parse_cidr(text)[0].version == version
    except GoError:
        return False


is_ipv4_cidr = functools.partial(_cidr_of_version, version=4)  # cidr.go:89-96 IsIPv4CIDR
is_ipv6_cidr = functools.partial(_cidr_of_version, version=6)  # cidr.go:99-106 IsIPv6CIDR


def is_cidr(version: int, subnet: str) -> None:
    """cidr.go:75-86 IsCIDR."""
    is_ip_version(version)
    if not _cidr_of_version(subnet, version):
        raise GoError(f"{ERR_INVALID_CIDR_FORMAT} in IPv{version} '{subnet}'", ERR_INVALID_CIDR_FORMAT)


def is_format_cidr(subnet: str) -> None:
    """cidr.go:108-121 IsFormatCIDR: the subnet written as Go prints its network."""
    network = parse_cidr(subnet)[1]
    if str(network) != subnet:
        raise GoError(f"unformatted subnet {subnet}, please change it to {network}")


def is_cidr_overlap(version: int, subnet1: str, subnet2: str) -> bool:
    """cidr.go:45-71 IsCIDROverlap: one contains the other's network address with a prefix no longer."""
    is_ip_version(version)
    is_cidr(version, subnet1)
    is_cidr(version, subnet2)
    a, b = parse_cidr(subnet1)[1], parse_cidr(subnet2)[1]
    return a.subnet_of(b) or b.subnet_of(a)  # type: ignore[arg-type]


def is_ip(version: int, text: str) -> None:
    """ip.go:69-80 IsIP."""
    is_ip_version(version)
    if not (is_ipv4_text(text) if version == 4 else is_ipv6_text(text)):
        raise GoError(f"{ERR_INVALID_IP_FORMAT} in IPv{version} '{text}'", ERR_INVALID_IP_FORMAT)


def contains_ip(version: int, subnet: str, ip: str) -> bool:
    """ip.go:55-66 ContainsIP (ParseCIDR and ParseIP of that version first)."""
    is_cidr(version, subnet)
    is_ip(version, ip)
    return parse_ip(ip) in parse_cidr(subnet)[1]


def _is_version_range(text: str, version: int) -> bool:
    """iprange.go:222-268 IsIPv4IPRange / IsIPv6IPRange: one address, or two in order."""
    parts = text.split("-")
    valid = is_ipv4_text if version == 4 else is_ipv6_text
    if len(parts) > 2 or not all(valid(p) for p in parts):
        return False
    return int(parse_ip(parts[0])) <= int(parse_ip(parts[-1]))  # type: ignore[arg-type]


is_ipv4_ip_range = functools.partial(_is_version_range, version=4)  # IsIPv4IPRange
is_ipv6_ip_range = functools.partial(_is_version_range, version=6)  # IsIPv6IPRange


def is_ip_range(version: int, text: str) -> None:
    """iprange.go:207-218 IsIPRange."""
    is_ip_version(version)
    if not _is_version_range(text, version):
        raise GoError(f"{ERR_INVALID_IP_RANGE_FORMAT} in IPv{version} '{text}'", ERR_INVALID_IP_RANGE_FORMAT)


def parse_ip_range(version: int, text: str) -> tuple[int, int]:
    """iprange.go:50-78 ParseIPRange, as the interval of its addresses."""
    is_ip_range(version, text)
    parts = text.split("-")
    return int(parse_ip(parts[0])), int(parse_ip(parts[-1]))  # type: ignore[arg-type]


def parse_ip_ranges(version: int, ranges: list[str]) -> list[tuple[int, int]]:
    """iprange.go:35-46 ParseIPRanges (an empty list is no error, whatever the version)."""
    return [parse_ip_range(version, r) for r in ranges]


def addresses(intervals: list[tuple[int, int]]) -> list[int]:
    """The addresses of intervals, in order, repeated as ParseIPRanges repeats them."""
    if sum(end - start + 1 for start, end in intervals) > 1 << 20:
        raise NotImplementedError("Go enumerates every address of these ranges; the model does not")
    return [ip for start, end in intervals for ip in range(start, end + 1)]


def ip_text(version: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def convert_ips_to_ranges(version: int, ips: list[int]) -> list[str]:
    """iprange.go:82-124 ConvertIPsToIPRanges: distinct, sorted, consecutive addresses joined as "a-b"."""
    is_ip_version(version)
    return _ranges_text(version, [(ip, ip) for ip in ips])


def _ranges_text(version: int, intervals: list[tuple[int, int]]) -> list[str]:
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [ip_text(version, s) if s == e else f"{ip_text(version, s)}-{ip_text(version, e)}" for s, e in merged]


def merge_ip_ranges(version: int, ranges: list[str]) -> list[str]:
    """iprange.go:24-31 MergeIPRanges."""
    intervals = parse_ip_ranges(version, ranges)
    is_ip_version(version)
    return _ranges_text(version, intervals)


def ip_range_contains_ip(version: int, ip_range: str, ip: str) -> bool:
    """iprange.go:149-172 IPRangeContainsIP: a single address is compared as text."""
    is_ip_range(version, ip_range)
    is_ip(version, ip)
    parts = ip_range.split("-")
    if len(parts) == 1:
        return ip_range == ip
    return int(parse_ip(parts[0])) <= int(parse_ip(ip)) <= int(parse_ip(parts[1]))  # type: ignore[arg-type]


def assemble_total_ips(version: int, ips: list[str], exclude: list[str]) -> list[int]:
    """utils.go:13-25 AssembleTotalIPs: the addresses of `ips` (in order, repeats kept) not in `exclude`."""
    total = addresses(parse_ip_ranges(version, ips))
    excluded = set(addresses(parse_ip_ranges(version, exclude)))
    return [ip for ip in total if ip not in excluded]


def cidr_to_label_value(version: int, subnet: str) -> str:
    """utils.go:27-37 CIDRToLabelValue: '.' (3 times), ':' (7 times) and '/' (once) as '-'."""
    is_cidr(version, subnet)
    return subnet.replace(".", "-", 3).replace(":", "-", 7).replace("/", "-", 1)


@dataclass(frozen=True)
class Range:
    """subnet.go:14-17: a range as written (`raw`) and the interval it covers."""

    raw: str
    start: int
    end: int


class CIDR:
    """subnet.go:19-58 NewCIDR: the subnet's ranges, each inside the subnet and none overlapping another, then the
    excluded ranges cut out of them (a cut range keeps the text it was written as)."""

    def __init__(self, base: str, ranges: list[str], exclude: list[str]) -> None:
        self.base = parse_cidr(base)[1]
        self.ranges: list[Range] = []
        for item in ranges:
            self._add(Range(item, *self._parse(item)))
        for item in exclude:
            self.ranges = _cut(self.ranges, Range(item, *self._parse(item)))

    def _parse(self, value: str) -> tuple[int, int]:
        """subnet.go:133-155 parse, :158-181 convertIPtoBigInt."""
        parts = value.split("-")
        if len(parts) > 2 or (len(parts) == 1 and "/" in value):
            raise GoError(f"invalid range: {value}")
        bounds = []
        for part in parts:
            ip = parse_ip(part)
            if ip is None:
                raise GoError(f"invalid IP address: {part}")
            if ip.version != self.base.version or ip not in self.base:
                raise GoError(f"not match base subnet: {part}")
            bounds.append(int(ip))
        return bounds[0], bounds[-1]

    def _add(self, r: Range) -> None:
        """subnet.go:93-122 addIncludeRange: a reversed range is turned round; an overlap is an error."""
        a = Range(r.raw, min(r.start, r.end), max(r.start, r.end))
        for b in self.ranges:
            if b.start <= a.start and a.end <= b.end:
                raise GoError(f"range {a.raw} is already covered by {b.raw}")
            if a.start <= b.start and b.end <= a.end:
                raise GoError(f"range {a.raw} covers {b.raw}")
            if b.start <= a.start <= b.end or b.start <= a.end <= b.end:
                raise GoError(f"range {a.raw} overlaps with {b.raw}")
        self.ranges.append(a)

    def total_ip(self) -> int:
        """subnet.go:74-90 TotalIPInt, capped at Go's MaxInt64."""
        return min(sum(r.end - r.start + 1 for r in self.ranges), (1 << 63) - 1)

    def overlaps(self, other: list[Range]) -> list[str]:
        """subnet.go:189-202 IsOverlapIPRanges: the text of each of `other`'s ranges that meets one of ours."""
        return [y.raw for x in self.ranges for y in other if x.start <= y.end and y.start <= x.end]


def _cut(base: list[Range], cut: Range) -> list[Range]:
    """subnet.go:204-229 removeExcludeIPRange, one excluded range."""
    out = []
    for r in base:
        if r.start > cut.end or r.end < cut.start:
            out.append(r)
            continue
        if r.start < cut.start:
            out.append(Range(r.raw, r.start, cut.start - 1))
        if r.end > cut.end:
            out.append(Range(r.raw, cut.end + 1, r.end))
    return out


def netip_addr(text: str) -> tuple[Address, str]:
    """netip.ParseAddr (Go 1.25 net/netip/netip.go): an address and its IPv6 zone; the error names the input (its
    specific reasons, "IPv4 field has octet with leading zero" and the like, are all "unable to parse IP" here)."""
    head, percent, zone = text.partition("%")
    ip = parse_ip(head)
    if ip is None or (percent and (ip.version == 4 or not zone)):
        raise GoError(f"ParseAddr({go_quote(text)}): unable to parse IP")
    return ip, zone


def netip_prefix(text: str) -> tuple[Address, int]:
    """ip.go:283-302 ParseIPOrCIDR: an address is its /32 or /128 (PrefixFrom drops a zone); a prefix is
    netip.ParsePrefix's (no zone, decimal bits without a sign or leading zero, in range), its host bits kept."""
    if "/" not in text:
        ip, _ = netip_addr(text)
        return ip, ip.max_prefixlen
    head, _, bits = text.rpartition("/")
    quoted = f"netip.ParsePrefix({go_quote(text)})"
    try:
        ip, zone = netip_addr(head)
    except GoError as e:
        raise GoError(f"{quoted}: {e}") from None
    if zone:
        raise GoError(f"{quoted}: IPv6 zones cannot be present in a prefix")
    if not re.fullmatch("0|[1-9][0-9]*", bits):
        raise GoError(f"{quoted}: bad bits after slash: {go_quote(bits)}")
    if int(bits) > ip.max_prefixlen:
        raise GoError(f"{quoted}: prefix length out of range")
    return ip, int(bits)


def parse_ip_or_cidr(text: str) -> str:
    """ParseIPOrCIDR's prefix as netip.Prefix.String prints it."""
    address, bits = netip_prefix(text)
    return f"{address}/{bits}"
