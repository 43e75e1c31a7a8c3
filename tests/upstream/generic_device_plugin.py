"""squat/generic-device-plugin 0.1.0 (github.com/squat/generic-device-plugin, tag 0.1.0, commit c04b31d1): what it
does with its arguments, up to the devices it advertises. Every validation rule of the start-up path is ported, in
upstream's order; `PluginExit` is the plugin exiting, with the message it prints.

- config.go:33-60 (initConfig): pflag flags --config, --domain (default squat.ai), --device (repeatable),
  --plugin-directory, --log-level (default info), --listen (default :8080), --version; an unknown flag or a flag
  without its value makes pflag exit 2 (pflag ExitOnError). :73-74 viper.AutomaticEnv: an environment variable of the
  flag's name (upper case, `-` as `_`) is used when the flag is not given. Not modeled: a config file
  (/etc/generic-device-plugin/config.yaml, absent from the image, which is FROM scratch).
- config.go:90-103 (getConfiguredDevices): each --device is YAML (ghodss/yaml v1.0.0: YAML to JSON, then Go's
  encoding/json into deviceplugin.DeviceSpec: keys matched case-insensitively, unknown keys ignored, a value of the
  wrong type is an error "failed to parse device ...").
- main.go:82-85: the domain must be a DNS-1123 subdomain (k8s.io/apimachinery v0.35.3 IsDNS1123Subdomain).
- main.go:95-122: per device: Default() (deviceplugin/generic.go:49-65: count 0 -> 1, limit 0 -> 1, type "" ->
  Device, Device permissions "" -> "mrw"; a null device or group is a nil pointer there: a panic); the name, trimmed,
  must match `[a-z0-9][-a-z0-9]*[a-z0-9]` ("failed to parse device %q; device type must match the regular
  expression %q"); the resource is `path.Join(domain, name)`; a group must not have both paths and usb; paths and
  mount paths are trimmed; at least one device.
- main.go:135-151: the log level must be one of all, debug, info, warn, error, none. :165-169: net.Listen on --listen.
- deviceplugin/path.go:74-154 (discoverPath): each path of a group is globbed (io/fs Glob over os.DirFS("/") through
  absolute/fs.go, which first makes the pattern relative to "/": a relative pattern is an error); a missing optional
  path is skipped; each matched list repeated `limit` times; the group yields min(largest match count, shortest
  repeated list) devices, each `count` times; device i takes the i-th entry of every list; its ID is the SHA-1 of
  the count index and the host paths. generic.go:163-183 (refreshDevices) keeps devices by ID: a repeated ID is one.
  Not modeled: USB discovery (deviceplugin/usb.go), which the chart does not use.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

FLAGS = {"config": "", "domain": "squat.ai", "plugin-directory": "/var/lib/kubelet/device-plugins/",
         "log-level": "info", "listen": ":8080"}  # fmt: skip
LOG_LEVELS = ("all", "debug", "info", "warn", "error", "none")
DEVICE_TYPE = "[a-z0-9][-a-z0-9]*[a-z0-9]"  # main.go:87
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"  # apimachinery validation.go:155
_DNS1123_SUBDOMAIN = re.compile(f"^{_DNS1123_LABEL}(\\.{_DNS1123_LABEL})*$")  # validation.go:184, 193


class PluginExit(Exception):
    """The plugin exits: `code` 1 with main.go's "Execution failed: <message>", 2 for pflag's usage error or a panic."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class BadPattern(Exception):
    """path.ErrBadPattern: a malformed glob makes discovery fail (the resource then advertises nothing)."""


@dataclass(frozen=True)
class Device:
    """One advertised device: (host path, container path, permissions) device nodes and (host, container, ro) mounts."""

    id: str
    specs: tuple[tuple[str, str, str], ...] = ()
    mounts: tuple[tuple[str, str, bool], ...] = ()

    @property
    def host_paths(self) -> list[str]:
        return [s[0] for s in self.specs] + [m[0] for m in self.mounts]


@dataclass
class Config:
    domain: str
    devices: list[dict[str, Any]] = field(default_factory=list)  # defaulted, trimmed, name = domain/name


def is_dns1123_subdomain(value: str) -> bool:
    """apimachinery pkg/util/validation/validation.go:198-207."""
    return len(value) <= 253 and bool(_DNS1123_SUBDOMAIN.match(value))


# --- flags (pflag v1.0.10 flag.go parseLongArg; the plugin defines no shorthand) ---------------------------------
def parse_flags(args: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, str], list[str], bool]:
    """(string flags, the --device values, --version) after pflag's parsing and viper's environment fallback."""
    strings: dict[str, str] = {}
    devices: list[str] = []
    version = False
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue  # a positional argument: pflag keeps it, the plugin ignores it
        if not arg.startswith("--"):
            raise PluginExit(f"unknown shorthand flag: {arg[1]!r} in {arg}", 2)
        name, has_value, value = arg[2:].partition("=")
        if name == "version":
            version = not has_value or value.lower() in ("1", "t", "true")
            continue
        if name not in FLAGS and name != "device":
            raise PluginExit(f"unknown flag: --{name}", 2)
        if not has_value:
            if i >= len(args):
                raise PluginExit(f"flag needs an argument: --{name}", 2)
            value, i = args[i], i + 1
        if name == "device":
            devices.append(value)
        else:
            strings[name] = value
    env = env or {}
    for name, default in FLAGS.items():  # viper: a flag given, else the environment, else the default
        strings.setdefault(name, env.get(name.upper().replace("-", "_"), default))
    if not devices and "DEVICE" in env:
        raise PluginExit("failed to decode devices: unexpected type: string")
    return strings, devices, version


# --- decoding a --device (ghodss/yaml -> encoding/json into DeviceSpec, deviceplugin/{generic,path,usb}.go) -------
_PATH_FIELDS = {"path": str, "mountPath": str, "permissions": str, "readOnly": bool, "type": str, "limit": "uint",
                "optional": bool}  # fmt: skip
_USB_FIELDS = {"vendor": "usbid", "product": "usbid", "serial": str}
_GROUP_FIELDS = {"paths": ("list", _PATH_FIELDS), "usb": ("list", _USB_FIELDS), "count": "uint"}
_SPEC_FIELDS = {"name": str, "groups": ("list", _GROUP_FIELDS)}


def _typed(value: Any, kind: Any, where: str) -> Any:
    """One JSON value into its Go type, or the error encoding/json (or USBID.UnmarshalJSON) returns."""
    if value is None:
        return None  # JSON null leaves the Go zero value (a nil pointer for a group or path)
    if kind == "uint":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise PluginExit(f"json: cannot unmarshal {json.dumps(value)} into Go struct field {where} of type uint")
        return value
    if kind == "usbid":  # usb.go:58-75
        text = str(value).replace("\n", "").replace('"', "")
        if text == "":
            return 0
        if not re.fullmatch(r"[0-9a-fA-F]+", text) or int(text, 16) > 0xFFFF:
            raise PluginExit(f'malformed device data "{text}"')
        return int(text, 16)
    if isinstance(kind, tuple):  # a slice of pointers to structs
        if not isinstance(value, list):
            raise PluginExit(f"json: cannot unmarshal {type(value).__name__} into Go struct field {where}")
        return [_struct(v, kind[1], where) for v in value]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise PluginExit(f"json: cannot unmarshal {json.dumps(value)} into Go struct field {where} of type {kind}")
    return value


def _struct(data: Any, fields: dict[str, Any], where: str) -> dict[str, Any] | None:
    """encoding/json into a struct: an exact key first, else a case-insensitive one (decode.go, object); unknown keys
    ignored; a non-object is an error."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise PluginExit(f"json: cannot unmarshal {type(data).__name__} into Go value of type {where}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key if key in fields else next((f for f in fields if f.lower() == str(key).lower()), None)
        if name is not None:
            out[name] = _typed(value, fields[name], f"{where}.{name}")
    return out


def decode_device(text: str) -> dict[str, Any] | None:
    """config.go:95-99: one --device value as the plugin reads it (None: YAML null or empty)."""
    try:
        return _struct(yaml.safe_load(text), _SPEC_FIELDS, "DeviceSpec")
    except (yaml.YAMLError, PluginExit) as exc:
        raise PluginExit(f"failed to parse device {text!r}: {exc}") from exc


def _default(spec: dict[str, Any] | None) -> None:
    """DeviceSpec.Default (generic.go:49-65), which dereferences every device, group and path."""
    if spec is None:
        raise PluginExit("panic: runtime error: invalid memory address or nil pointer dereference", 2)
    for group in spec.get("groups") or []:
        if group is None or None in (group.get("paths") or []):
            raise PluginExit("panic: runtime error: invalid memory address or nil pointer dereference", 2)
        group["count"] = group.get("count") or 1
        for path in group.get("paths") or []:
            path["limit"] = path.get("limit") or 1
            path["type"] = path.get("type") or "Device"
            if path["type"] == "Device" and not path.get("permissions"):
                path["permissions"] = "mrw"


def configure(args: list[str], env: dict[str, str] | None = None) -> Config:
    """main.go:71-169: the configuration the plugin runs with, or PluginExit with the reason it exits."""
    strings, raw_devices, version = parse_flags(args, env)
    if version:
        raise PluginExit("printed its version", 0)
    domain = strings["domain"]
    if not is_dns1123_subdomain(domain):
        raise PluginExit(f"failed to parse domain {domain!r}: a lowercase RFC 1123 subdomain")
    devices = [decode_device(d) for d in raw_devices]
    for spec in devices:
        _default(spec)
        assert spec is not None
        name = str(spec.get("name") or "")
        if not re.fullmatch(DEVICE_TYPE, name.strip()):
            raise PluginExit(
                f"failed to parse device {name!r}; device type must match the regular expression {DEVICE_TYPE!r}"
            )
        spec["name"] = posixpath.join(domain, name.strip())
        for group in spec.get("groups") or []:
            if group.get("paths") and group.get("usb"):
                raise PluginExit(f"failed to parse device {name!r}; cannot define both path and usb at the same time")
            for path in group.get("paths") or []:
                path["path"] = str(path.get("path") or "").strip()
                path["mountPath"] = str(path.get("mountPath") or "").strip()
    if not devices:
        raise PluginExit("at least one device must be specified")
    if strings["log-level"] not in LOG_LEVELS:
        raise PluginExit(f"log level {strings['log-level']} unknown; possible values are: {', '.join(LOG_LEVELS)}")
    _check_listen(strings["listen"])
    return Config(domain, [d for d in devices if d is not None])


def _check_listen(address: str) -> None:
    """net.Listen("tcp", address) (main.go:165-169) for a literal address; a host name would need DNS (not modeled)."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not port.isdigit() or int(port) > 65535:
        raise PluginExit(f"failed to listen on {address}: invalid port")
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError as exc:
            raise NotImplementedError(f"listen host {host!r}: a name lookup, not modeled") from exc


# --- discovery (path.go:74-154) over a node's files ---------------------------------------------------------------
def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    """Go path/match.go scanChunk."""
    star = False
    while pattern.startswith("*"):
        pattern, star = pattern[1:], True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1 if i + 1 < len(pattern) else 0
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            return star, pattern[:i], pattern[i:]
        i += 1
    return star, pattern, ""


def _get_esc(chunk: str) -> tuple[str, str]:
    """Go path/match.go getEsc."""
    if not chunk or chunk[0] in "-]":
        raise BadPattern
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern
    if len(chunk) == 1:
        raise BadPattern
    return chunk[0], chunk[1:]


def _match_chunk(chunk: str, s: str) -> tuple[str, bool]:
    """Go path/match.go matchChunk: the rest of s after chunk, and whether it matched; BadPattern when malformed."""
    failed = False
    while chunk:
        failed = failed or not s
        if chunk[0] == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = chunk.startswith("^")
            chunk = chunk[1:] if negated else chunk
            matched, ranges = False, 0
            while True:
                if chunk.startswith("]") and ranges > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                matched = matched or (lo <= r <= hi and r != "")
                ranges += 1
            failed = failed or matched == negated
        elif chunk[0] == "?":
            if not failed:
                failed, s = s[0] == "/", s[1:]
            chunk = chunk[1:]
        else:
            if chunk[0] == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern
            if not failed:
                failed, s = chunk[0] != s[0], s[1:]
            chunk = chunk[1:]
    return ("", False) if failed else (s, True)


def match(pattern: str, name: str) -> bool:
    """Go path.Match (src/path/match.go): `*` and `?` never match `/`; BadPattern when the pattern is malformed."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name
        rest, ok = _match_chunk(chunk, name)
        if ok and (not rest or pattern):
            name = rest
            continue
        if star:
            i, found = 0, False
            while i < len(name) and name[i] != "/":
                rest, ok = _match_chunk(chunk, name[i + 1 :])
                if ok and not (not pattern and rest):
                    name, found = rest, True
                    break
                i += 1
            if found:
                continue
        while pattern:  # the rest of the pattern must still be well-formed
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


class FileSystem:
    """A node's root file system as os.DirFS("/") shows it: the files given and every directory above them."""

    def __init__(self, files: list[str]) -> None:
        self.entries = {f.strip("/") for f in files}
        for f in list(self.entries):
            parts = f.split("/")
            self.entries.update("/".join(parts[:n]) for n in range(1, len(parts)))

    def exists(self, name: str) -> bool:
        return name == "." or name in self.entries

    def read_dir(self, name: str) -> list[str]:
        prefix = "" if name == "." else name + "/"
        return sorted({e[len(prefix) :].split("/")[0] for e in self.entries if e.startswith(prefix) and e != name})


def _has_meta(path: str) -> bool:
    return any(c in path for c in "*?[\\")


def _fs_glob(fs: FileSystem, pattern: str) -> list[str]:
    """Go io/fs Glob (src/io/fs/glob.go) on a file system without its own Glob."""
    match(pattern, "")  # a malformed pattern raises BadPattern
    if not _has_meta(pattern):
        return [pattern] if fs.exists(pattern) else []
    directory, file = posixpath.split(pattern)
    directory = directory or "."
    if _has_meta(directory) and directory == pattern:  # glob.go: no infinite recursion
        raise BadPattern
    dirs = _fs_glob(fs, directory) if _has_meta(directory) else [directory]
    return [posixpath.normpath(posixpath.join(d, n)) for d in dirs for n in fs.read_dir(d) if match(file, n)]


def glob(fs: FileSystem, pattern: str) -> list[str]:
    """absolute/fs.go Glob: filepath.Rel("/", pattern), fs.Glob on the node's root, results joined to "/"."""
    if not pattern.startswith("/"):
        raise BadPattern(f"Rel: can't make {pattern} relative to /")
    relative = posixpath.normpath(pattern).lstrip("/") or "."
    return [posixpath.join("/", m) if m != "." else "/" for m in _fs_glob(fs, relative)]


def discover(spec: dict[str, Any], files: list[str]) -> list[Device]:
    """discoverPath (path.go:74-154) for one defaulted device spec, in upstream's order."""
    fs = FileSystem(files)
    devices: list[Device] = []
    for group in spec.get("groups") or []:
        paths = group.get("paths") or []
        lists: list[list[str]] = [[] for _ in paths]
        present = [False] * len(paths)
        length, limit_length = 0, None
        for i, path in enumerate(paths):
            matches = sorted(glob(fs, path["path"]))
            if not matches and path.get("optional"):
                continue
            present[i] = True
            lists[i] = matches * path["limit"]
            limit_length = len(lists[i]) if limit_length is None else min(limit_length, len(lists[i]))
            length = max(length, len(matches))
        length = min(length, limit_length) if limit_length is not None else length
        for i in range(length):
            for j in range(group["count"]):
                digest = hashlib.sha1(str(j).encode())
                specs, mounts = [], []
                for k, path in enumerate(paths):
                    if not present[k]:
                        continue
                    host = lists[k][i]
                    target = path.get("mountPath") or host
                    target = target + posixpath.basename(host) if target.endswith("/") else target
                    if path["type"] == "Device":
                        specs.append((host, target, path["permissions"]))
                    elif path["type"] == "Mount":
                        mounts.append((host, target, bool(path.get("readOnly"))))
                    digest.update(host.encode())
                devices.append(Device(digest.hexdigest(), tuple(specs), tuple(mounts)))
    return devices


def advertised(args: list[str], files: list[str], env: dict[str, str] | None = None) -> dict[str, list[Device]]:
    """resource -> the devices the kubelet is told about (one per ID, generic.go:163-183) on a node with `files`.
    PluginExit when the plugin would not start; BadPattern when a resource's discovery fails."""
    config = configure(args, env)
    out = {}
    for spec in config.devices:
        if any(g.get("usb") for g in spec.get("groups") or []):
            raise NotImplementedError("USB discovery is not modeled")
        out[spec["name"]] = list({d.id: d for d in discover(spec, files)}.values())
    return out
