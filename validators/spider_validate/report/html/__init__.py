"""The HTML report: one self-contained file (no script, no request) from a JSON result of any format version.

Rendering needs the `html` extra (altair, vl-convert-python, Jinja2): `pip install './validators[html]'` from the
repository; this module imports them only when it renders, so that `missing()` can say what to install.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from spider_validate.engine.model import FORMAT_VERSION

EXTRA = {"jinja2": "Jinja2", "altair": "altair", "vl_convert": "vl-convert-python"}


def missing() -> list[str]:
    """The distributions of the html extra that are not installed."""
    return [dist for module, dist in EXTRA.items() if importlib.util.find_spec(module) is None]


def load(path: Path) -> dict[str, Any]:
    """A saved JSON result (`run -o json`, `audit -o json`); ValueError saying what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise ValueError(f"{path} is not a spider-validate JSON result (it has no list of tests)")
    version = data.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has result format {version!r}; this spider-validate reads formats 1 to {FORMAT_VERSION}"
        )
    return data


def write(data: dict[str, Any], path: str | Path) -> None:
    from spider_validate.report.html.render import render

    Path(path).write_text(render(data), encoding="utf-8")
