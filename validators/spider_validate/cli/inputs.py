"""Every command-line value checked before anything connects: click types whose messages say what to pass."""

from __future__ import annotations

import ipaddress
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import click

from spider_validate.engine.params import DEFAULT_IMAGES

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
REGISTRY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._/-][a-z0-9]+)*)?")
RUN_ID_LENGTH = len("1126155019-ab12")  # runner.new_run_id(): month day hour minute second, 4 hex digits

# An image reference, NAME[:TAG][@DIGEST], as distribution/reference parses it (regexp.go at 00a09fa3: `referencePat`
# built from domainAndPort, pathComponent, tag and digestPat; reference.go, Parse: the name at most 255 characters,
# the digest one of go-digest's algorithms with its length of hex digits).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
)
_DOMAIN += r"|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?"
IMAGE_REFERENCE = re.compile(
    rf"((?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::([\w][\w.-]{{0,127}}))?"
    r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}  # go-digest's algorithms and their encoded lengths


class Positive(click.ParamType):
    """A finite number above 0 (NaN, infinities, 0 and negatives are refused)."""

    def __init__(self, unit: str) -> None:
        self.name = unit

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or number <= 0:
            self.fail(f"{value!r} must be a finite number above 0", param, ctx)
        return number


class Pattern(click.ParamType):
    """A regular expression, optionally prefixed with ! (exclude)."""

    name = "REGEX"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            re.compile(str(value).removeprefix("!"))
        except re.error as exc:
            self.fail(f"{value!r} is not a regular expression: {exc}", param, ctx)
        return str(value)


class AddressRange(click.ParamType):
    """A-B: two IPv4 addresses, A <= B (the ipam suite's pools are ipVersion 4)."""

    name = "A-B"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        first, dash, last = str(value).partition("-")
        try:
            a, b = ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address(last.strip())
        except ValueError:
            self.fail(f"{value!r} is not a range of two IPv4 addresses such as 10.42.15.200-10.42.15.239", param, ctx)
        if not dash or a > b:
            self.fail(f"{value!r}: the first address must not be above the last", param, ctx)
        return f"{a}-{b}"


class NamespaceName(click.ParamType):
    """A namespace's name: a DNS label of at most 63 characters."""

    name = "NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not DNS_LABEL.fullmatch(str(value)) or len(str(value)) > 63:
            self.fail(f"{value!r} is not a namespace name (a DNS label: a-z, 0-9 and '-', at most 63)", param, ctx)
        return str(value)


class NamespacePrefix(click.ParamType):
    """A DNS label short enough for `<prefix>-<run id>` to stay one (63 characters)."""

    name = "PREFIX"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        limit = 63 - 1 - RUN_ID_LENGTH
        if not DNS_LABEL.fullmatch(str(value)) or len(str(value)) > limit:
            self.fail(
                f"{value!r} is not a namespace name prefix: lower-case letters, digits and '-', "
                f"starting and ending with a letter or digit, at most {limit} characters",
                param,
                ctx,
            )
        return str(value)


class Registry(click.ParamType):
    """host[:port][/path] of an image registry, without a scheme (image references have none)."""

    name = "HOST[/PATH]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).rstrip("/")
        if "://" in text:
            self.fail(f"{value!r}: give the registry without a scheme, e.g. {text.split('://', 1)[1]}", param, ctx)
        if not REGISTRY.fullmatch(text):
            self.fail(f"{value!r} is not a registry such as mirror.example.com:5000/k8s", param, ctx)
        return text


class NodeNames(click.ParamType):
    """A,B: node names (DNS subdomains), none empty."""

    name = "A,B"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = tuple(n.strip() for n in str(value).split(","))
        bad = [n for n in names if not DNS_SUBDOMAIN.fullmatch(n) or len(n) > 253]
        if bad:
            self.fail(f"{value!r}: {', '.join(repr(n) for n in bad)} is not a node name", param, ctx)
        return names


def node_choice(all_nodes: bool, nodes: tuple[str, ...] | None, node_selector: tuple[str, ...]) -> tuple[str, ...]:
    """--nodes (empty: every node), refusing --all-nodes beside a narrower choice it would contradict."""
    if all_nodes and (nodes or node_selector):
        raise click.BadParameter("not with --nodes or --node-selector, which narrow it", param_hint="--all-nodes")
    return nodes or ()


def key_values(pairs: tuple[str, ...], what: str, sep: str = "=") -> dict[str, str]:
    out = {}
    for pair in pairs:
        for item in pair.split(","):
            key, eq, value = item.partition(sep)
            if not eq or not key.strip():
                raise click.BadParameter(f"expected KEY{sep}VALUE, got {item!r}", param_hint=what)
            out[key.strip()] = value.strip()
    return out


def image_reference(ref: str) -> str:
    """Why `ref` is not an image reference a runtime pulls (empty: it is one); REF@sha256:... pins a digest."""
    match = IMAGE_REFERENCE.fullmatch(ref)
    if not match:
        return "not an image reference (REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], lower-case repository)"
    if len(match.group(1)) > 255:
        return "its name is longer than 255 characters"
    digest = match.group(3)
    if digest:
        algorithm, _, hex_digits = digest.partition(":")
        if DIGEST_HEX.get(algorithm) != len(hex_digits) or hex_digits != hex_digits.lower():
            return f"digest {digest}: expected sha256: and 64 lower-case hex digits"
    return ""


def image_overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    """--image NAME=REF, NAME one of the images a run uses, REF an image reference (a digest pins it)."""
    overrides = key_values(pairs, "--image")
    unknown = set(overrides) - set(DEFAULT_IMAGES)
    if unknown:
        raise click.BadParameter(
            f"unknown image {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_IMAGES)}", param_hint="--image"
        )
    for name, ref in overrides.items():
        if problem := image_reference(ref):
            raise click.BadParameter(f"{name}={ref}: {problem}", param_hint="--image")
    return overrides


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def writable_file(path: str, option: str) -> None:
    """The file can be written (its directory exists and takes files); nothing is left behind by the check."""
    target = Path(path)
    if target.is_dir():
        raise click.BadParameter(f"{path} is a directory", param_hint=option)
    if not target.parent.is_dir():
        what = "is not a directory" if target.parent.exists() else "does not exist"
        raise click.BadParameter(f"directory {target.parent} {what}", param_hint=option)
    _can_create_in(target.parent, option, path)
    if target.exists():
        try:
            target.open("a").close()
        except OSError as exc:
            raise click.BadParameter(f"cannot write {path}: {exc.strerror}", param_hint=option) from exc


def writable_dir(path: str, option: str) -> None:
    """The directory exists and takes files, or can be created (it is created only when there is something to write)."""
    existing = _nearest_existing(Path(path))
    if not existing.is_dir():
        raise click.BadParameter(f"{existing} is not a directory", param_hint=option)
    _can_create_in(existing, option, path)


def _can_create_in(directory: Path, option: str, path: str) -> None:
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise click.BadParameter(f"cannot write {path}: {exc.strerror} ({directory})", param_hint=option) from exc
