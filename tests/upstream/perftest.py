"""perftest's rules for the options spider-validate passes, by release (github.com/linux-rdma/perftest).

- src/perftest_parameters.c parser(): long and short options (getopt_long, the long_options table at
  v4.5-0.17:2205-2290); `-x` CHECK_VALUE_IN_RANGE_UNS(gid_index, MIN_GID_IX 0, MAX_GID_IX 64) in every release from
  v4.4-0.9 to 26.04.17 (perftest_parameters.h); `-D` CHECK_VALUE_POSITIVE ("Duration period must be positive"); `-p`
  an integer; a failed check prints its line, then "Parser function exited with Error".
- change_conn_type(): `-c` one of RC, UC, UD, RawEth, XRC, DC, SRD; SRD needs HAVE_SRD (libibverbs with efadv.h,
  else "SRD not detected in libibverbs") and, by release, the tool's verb: SEND from v4.4-0.9; SEND/READ from
  v4.4-0.32; SEND/READ/WRITE from 23.07.0-0.27; and WRITE_IMM from 24.01.0-0.38 ("SRD connection only possible
  in ... verbs"). Before v4.4-0.9 SRD is not a connection type.
- :1512-1522: SRD refuses RDMA_CM (-R) and events (-e).
- perftest_communication.c (23.07.0-0.27 and later, with HAVE_SRD_WITH_RDMA_READ/WRITE): at run time READ and WRITE
  over SRD also need the device's EFADV_DEVICE_ATTR_CAPS_RDMA_READ / _WRITE ("... verb is not supported with this
  EFA device"); `device_refusal` is that rule.
"""

from __future__ import annotations

RELEASES = ("v4.4-0.9", "v4.4-0.32", "v4.5-0.17", "23.07.0-0.27", "24.01.0-0.38", "26.04.17")
DEBIAN_BOOKWORM = (
    "v4.5-0.17"  # Debian bookworm's perftest 4.5+0.17-1 (the image scripts/build-rdma-tools-image.sh makes)
)
_SRD_VERBS = {"v4.4-0.9": ("SEND",), "v4.4-0.32": ("SEND", "READ"), "23.07.0-0.27": ("SEND", "READ", "WRITE"),
              "24.01.0-0.38": ("SEND", "READ", "WRITE", "WRITE_IMM")}  # fmt: skip
CONNECTIONS = ("RC", "UC", "UD", "RawEth", "XRC", "DC", "SRD")
_WITH_VALUE = {"-d", "--ib-dev", "-x", "--gid-index", "-p", "--port", "-D", "--duration", "-c", "--connection",
               "-q", "--qp"}  # fmt: skip
_FLAGS = {"-F", "--CPU-freq", "--report_gbits", "-R", "--rdma_cm", "-e", "--events"}


def srd_verbs(release: str) -> tuple[str, ...]:
    """The verbs `-c SRD` allows in `release` (empty: SRD is not a connection type yet)."""
    allowed: tuple[str, ...] = ()
    for since, verbs in _SRD_VERBS.items():
        if RELEASES.index(release) >= RELEASES.index(since):
            allowed = verbs
    return allowed


def refusal(release: str, have_srd: bool, argv: list[str]) -> str | None:
    """The line perftest's parser exits with for `argv` (ib_<verb>_bw ...), or None when it goes on to open the
    device."""
    verb = argv[0].removeprefix("ib_").removesuffix("_bw").upper()
    options: dict[str, str] = {}
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg in _WITH_VALUE:
            if i + 1 >= len(argv):
                return f"option requires an argument -- '{arg.lstrip('-')}'"
            options[arg.lstrip("-")[:1] if len(arg) == 2 else arg] = argv[i + 1]
            i += 2
            continue
        if arg.startswith("-") and arg not in _FLAGS:
            return f"unrecognized option '{arg}'"
        options[arg] = ""
        i += 1
    if (x := options.get("x")) is not None and not (x.isdigit() and 0 <= int(x) <= 64):
        return " Gid index should be between 0 and 64"
    if (d := options.get("D")) is not None and not (d.lstrip("-").isdigit() and int(d) > 0):
        return " Duration period must be positive"
    if (p := options.get("p")) is not None and not p.isdigit():
        return " Port is not a number"
    if (c := options.get("c")) is not None:
        if (c == "SRD" and not srd_verbs(release)) or c not in CONNECTIONS:
            return " Invalid Connection type. Please choose from {RC,UC,UD,XRC,DC,SRD}"
        if c == "SRD" and not have_srd:
            return " SRD not detected in libibverbs"
        if c == "SRD" and verb not in srd_verbs(release):
            return f" SRD connection only possible in {'/'.join(srd_verbs(release))} verbs"
        if c == "SRD" and ({"-R", "--rdma_cm"} & options.keys()):
            return " SRD does not support RDMA_CM"
        if c == "SRD" and ({"-e", "--events"} & options.keys()):
            return " SRD does not support events"
    return None


def device_refusal(release: str, verb: str, device_caps: int) -> str | None:
    """perftest_communication.c (23.07.0-0.27+): READ/WRITE over SRD against the EFA's capability bits."""
    if RELEASES.index(release) < RELEASES.index("23.07.0-0.27"):
        return None
    bits = {"read": 1 << 0, "write": 1 << 3}
    if verb in bits and not device_caps & bits[verb]:
        return f"{verb.capitalize()} verb is not supported with this EFA device"
    return None


def probe_output(release: str, have_srd: bool, device: str = "spider-validate-no-such-device") -> str:
    """What rdma_probes.SRD_PROBE_SCRIPT prints in a pod with this perftest and EFA devices: each tool's refusal,
    or ctx_find_dev's "IB device ... not found" (perftest_resources.c) once the options passed."""
    out = []
    for verb in ("write", "read", "send"):
        line = refusal(release, have_srd, [f"ib_{verb}_bw", "-c", "SRD", "-d", device])
        out += [f"== {verb}", line or f"IB device {device} not found"]
    return "\n".join(out) + "\n"
