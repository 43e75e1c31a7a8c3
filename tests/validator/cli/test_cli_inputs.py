"""Every bad input the issue lists is refused before anything connects, with a message and exit code 2, and
leaves no file behind; every option has help; `--version` exists. Through the installed entry point."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import click
import pytest
import yaml
from click.testing import CliRunner, Result
from spider_validate import __version__
from spider_validate.cli import common

from tests.lab.fixtures import entry_point


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory holding a regular file, and nothing else."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("x")
    yield tmp_path


def invoke(args: list[str]) -> Result:
    """The CLI with connecting forbidden: a refusal must come before it."""
    with mock.patch.object(common, "connect", side_effect=AssertionError("connected despite a bad input")):
        return CliRunner().invoke(entry_point(), args)


REFUSED: list[tuple[list[str], str]] = [
    (["run", "--test", "["], "'[' is not a regular expression"),
    (["run", "--test", "!(x"], "'!(x' is not a regular expression"),
    (["run", "--test", "nothing-matches-this"], "no test matches nothing-matches-this"),
    (["run", "--timeout", "-1"], "'-1' must be a finite number above 0"),
    (["run", "--timeout", "0"], "'0' must be a finite number above 0"),
    (["run", "--timeout", "nan"], "'nan' must be a finite number above 0"),
    (["run", "--timeout", "inf"], "'inf' must be a finite number above 0"),
    (["run", "--timeout", "soon"], "'soon' is not a number"),
    (["run", "--api-timeout", "0"], "'0' must be a finite number above 0"),
    (["run", "--cleanup-timeout", "-5"], "'-5' must be a finite number above 0"),
    (["run", "--rdma-min-gbps", "NaN"], "'NaN' must be a finite number above 0"),
    (["run", "--rdma-min-gbps", "-40"], "'-40' must be a finite number above 0"),
    (["run", "--rdma-min-gbps", "0"], "'0' must be a finite number above 0"),
    (["run", "--ipam-range", "garbage"], "'garbage' is not a range of two IPv4 addresses"),
    (["run", "--ipam-range", "10.0.0.9-10.0.0.1"], "the first address must not be above the last"),
    (["run", "--ipam-range", "10.0.0.1"], "'10.0.0.1' is not a range of two IPv4 addresses"),
    (["run", "--ipam-range", "fd00::1-fd00::9"], "is not a range of two IPv4 addresses"),
    (["run", "--namespace", "Bad_NS"], "'Bad_NS' is not a namespace name prefix"),
    (["run", "--namespace", "-x"], "'-x' is not a namespace name prefix"),
    (["run", "--namespace", "a" * 48], "at most 47 characters"),
    (["run", "--in-namespace", "Team"], "'Team' is not a namespace name"),
    (["run", "--in-namespace", "a" * 64], "at most 63"),
    (["run", "--in-namespace", "team", "--namespace", "sv"], "excludes --in-namespace"),
    (["cleanup", "--in-namespace", "-x"], "'-x' is not a namespace name"),
    (["run", "--image-registry", "https://x"], "without a scheme, e.g. x"),
    (["run", "--image-registry", "my registry"], "'my registry' is not a registry"),
    (["run", "--nodes", ","], "'' is not a node name"),
    (["run", "--nodes", "a,,b"], "'' is not a node name"),
    (["run", "--nodes", "Node_1"], "'Node_1' is not a node name"),
    (["run", "--image", "nosuch=x"], "unknown image nosuch; known: client, server, rdma"),
    (["run", "--image", "client"], "expected KEY=VALUE, got 'client'"),
    (["run", "--image", "client=Docker.io/Nicolaka/netshoot"], "client=Docker.io/Nicolaka/netshoot: not an image"),
    (["run", "--image", "server=r/agnhost@sha256:abc"], "not an image reference"),  # 32 hex digits at least
    (["run", "--image", f"server=r/agnhost@sha256:{'a' * 63}"], "expected sha256: and 64 lower-case hex digits"),
    (["run", "--image", f"server=r/agnhost@md5:{'a' * 64}"], "expected sha256: and 64 lower-case hex digits"),
    (["run", "--image", f"server=r/{'a' * 256}"], "longer than 255 characters"),
    (["manifests", "--image", "rdma=r/x:"], "not an image reference"),
    (["run", "--node-selector", "=x"], "expected KEY=VALUE, got '=x'"),
    (["run", "--concurrency", "0"], "0 is not in the range 1<=x<=64"),
    (["run", "--junit-file", "."], "is a directory"),
    (["run", "--junit-file", "missing/report.xml"], "directory missing does not exist"),
    (["run", "--junit-file", "a-file/report.xml"], "directory a-file is not a directory"),
    (["run", "--junit-file", "/proc/report.xml"], "cannot write /proc/report.xml"),
    (["run", "--diagnostics-dir", "a-file"], "Directory 'a-file' is a file"),
    (["run", "--diagnostics-dir", "a-file/sub"], "a-file is not a directory"),
    (["run", "--diagnostics-dir", "/proc/spider-validate"], "cannot write /proc/spider-validate"),
    (["audit", "--junit-file", "missing/report.xml"], "directory missing does not exist"),
    (["images", "--image", "nosuch=x"], "unknown image nosuch"),
    (["images", "--image-registry", "https://mirror.local"], "without a scheme, e.g. mirror.local"),
    (["manifests", "--image", "nosuch=x"], "unknown image nosuch"),
    (["manifests", "--nodes", ","], "'' is not a node name"),
    (["manifests", "--image-registry", "http://m"], "without a scheme"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_bad_input_is_refused_before_connecting(here: Path, args: list[str], message: str) -> None:
    result = invoke(args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, AssertionError)
    assert sorted(p.name for p in here.iterdir()) == ["a-file"]  # no report, no diagnostics folder


def kubeconfig(server: str = "https://127.0.0.1:6443", ca: str = base64.b64encode(b"CA").decode()) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
    }


KUBECONFIGS: list[tuple[str, bytes, str]] = [
    ("malformed-yaml", b"clusters: [unclosed\n", "is not valid YAML at line 2"),
    ("not-utf-8", b"apiVersion: v1\nkind: \xff\xfe Config\n", "is not UTF-8 text (byte 21)"),
    ("a-list", b"- one\n- two\n", "holds a list, not a kubeconfig"),
    ("a-string", b"just words\n", "holds a str, not a kubeconfig"),
    ("bad-base64", yaml.safe_dump(kubeconfig(ca="@@not base64@@")).encode(), "Invalid base64-encoded string"),
    ("no-such-context", yaml.safe_dump({**kubeconfig(), "current-context": "gone"}).encode(), "gone"),
]


@pytest.mark.parametrize(("name", "content", "message"), KUBECONFIGS, ids=[k[0] for k in KUBECONFIGS])
@pytest.mark.parametrize("command", ["run", "cleanup", "audit"])
def test_kubeconfig_problems_name_the_file(
    tmp_path: Path, command: str, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = CliRunner().invoke(entry_point(), [command, "--kubeconfig", str(path)])
    assert result.exit_code == 2, result.output
    assert f"kubeconfig {path}" in result.output and message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_missing_kubeconfig_suggests_the_kubeconfig_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(entry_point(), ["run", "--kubeconfig", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert f"kubeconfig {tmp_path / 'nope'} does not exist" in result.output
    assert "spider-validate kubeconfig --cluster NAME --region REGION" in result.output


def test_version() -> None:
    result = CliRunner().invoke(entry_point(), ["--version"])
    assert result.exit_code == 0 and result.output == f"spider-validate, version {__version__}\n"


def all_options() -> list[tuple[str, click.Parameter]]:
    group = entry_point()
    assert isinstance(group, click.Group)
    found = [("spider-validate", p) for p in group.params]
    for name, command in group.commands.items():
        found += [(name, p) for p in command.params]
    return found


@pytest.mark.parametrize(("command", "option"), all_options(), ids=[f"{c} {p.name}" for c, p in all_options()])
def test_every_option_has_help(command: str, option: click.Parameter) -> None:
    if isinstance(option, click.Argument):  # click gives arguments no help: the command's text explains it
        group = entry_point()
        assert isinstance(group, click.Group)
        assert len(group.commands[command].help or "") > 10
        return
    assert isinstance(option, click.Option) and option.help and len(option.help) > 10


DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("name", ["client", "server", "rdma", "perf"])
def test_every_image_takes_a_digest(name: str) -> None:
    """--image NAME=REPOSITORY@sha256:... (and TAG@sha256:...) is what the pods run; a mirror keeps the digest."""
    for ref in (f"mirror.example.com:5000/x/{name}@{DIGEST}", f"mirror.example.com:5000/x/{name}:1.0@{DIGEST}"):
        result = invoke(["images", "--image", f"{name}={ref}"])
        assert result.exit_code == 0 and ref in result.output.splitlines(), result.output
        result = invoke(["manifests", "--apps", "1", "--test", ".", "--image", f"{name}={ref}"])
        assert result.exit_code == 0, result.output
        images = {
            c["image"] for o in yaml.safe_load_all(result.output) for c in o.get("spec", {}).get("containers", [])
        }
        assert ref in images


def test_the_default_server_image_is_pinned_and_a_mirror_keeps_its_digest() -> None:
    from spider_validate.engine.params import DEFAULT_IMAGES

    assert DEFAULT_IMAGES["server"].endswith("@sha256:99c6b4bb4a1e1df3f0b3752168c89358794d02258ebebc26bf21c29399011a85")
    result = invoke(["images", "--image-registry", "mirror.local/k8s"])
    assert "mirror.local/k8s/e2e-test-images/agnhost:2.53@sha256:99c6b4bb" in result.output
