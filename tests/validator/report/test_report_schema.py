"""Every result that result_schema.json accepts renders: `spider-validate report` reads saved results, which may come
from other versions or be written by hand, so the page may depend on nothing the schema leaves optional.

The fixture fills every property the schema defines (a test checks it keeps doing so as the schema grows); the
variants leave out each optional property in turn, all of them at once, and set each nullable one to null.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from spider_validate import cli
from spider_validate.report import html
from spider_validate.report.html import render

SCHEMA = json.loads((Path(html.__file__).parents[1] / "result_schema.json").read_text())
EVERY_FIELD = json.loads((Path(__file__).parents[2] / "fixtures" / "results" / "every-field.json").read_text())
Path_ = tuple[str, ...]  # property names, "[]" for an array's items


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a $ref points to (only local `#/$defs/...` refs are used)."""
    while "$ref" in schema:
        schema = SCHEMA["$defs"][schema["$ref"].rpartition("/")[2]]
    return schema


def branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = resolve(schema)
    return [resolve(s) for s in schema["oneOf"]] if "oneOf" in schema else [schema]


def properties(schema: dict[str, Any], path: Path_ = ()) -> Iterator[tuple[Path_, bool, bool]]:
    """(path, optional, nullable) of every property the schema defines, depth first."""
    for branch in branches(schema):
        for name, sub in branch.get("properties", {}).items():
            types = resolve(sub).get("type", [])
            nullable = "null" in (types if isinstance(types, list) else [types])
            yield (*path, name), name not in branch.get("required", []), nullable
            yield from properties(sub, (*path, name))
        if "items" in branch:
            yield from properties(branch["items"], (*path, "[]"))


def present(data: Any, path: Path_) -> bool:
    """Whether `path` holds a value somewhere in `data` (in any item of an array on the way)."""
    if not path:
        return True
    head, rest = path[0], path[1:]
    if head == "[]":
        return isinstance(data, list) and any(present(item, rest) for item in data)
    return isinstance(data, dict) and head in data and present(data[head], rest)


def edit(data: Any, path: Path_, change: Any) -> None:
    """Apply `change(parent, name)` wherever `path` leads (every item of the arrays on the way)."""
    head, rest = path[0], path[1:]
    if head == "[]":
        for item in data if isinstance(data, list) else []:
            edit(item, rest, change)
    elif isinstance(data, dict) and head in data:
        if rest:
            edit(data[head], rest, change)
        else:
            change(data, head)


def without(path: Path_) -> dict[str, Any]:
    data = copy.deepcopy(EVERY_FIELD)
    edit(data, path, lambda parent, name: parent.pop(name))
    return data


def nulled(*paths: Path_) -> dict[str, Any]:
    data = copy.deepcopy(EVERY_FIELD)
    for path in paths:
        edit(data, path, lambda parent, name: parent.__setitem__(name, None))
    return data


OPTIONAL = sorted({p for p, optional, _ in properties(SCHEMA) if optional})
NULLABLE = sorted({p for p, _, nullable in properties(SCHEMA) if nullable})


def minimal() -> dict[str, Any]:
    """Only what the schema requires, everywhere (the deepest optional properties first)."""
    data = copy.deepcopy(EVERY_FIELD)
    for path in sorted(OPTIONAL, key=len, reverse=True):
        edit(data, path, lambda parent, name: parent.pop(name))
    return data


def test_the_fixture_fills_every_property_of_the_schema() -> None:
    jsonschema.validate(EVERY_FIELD, SCHEMA)
    missing = sorted({".".join(p) for p, _, _ in properties(SCHEMA) if not present(EVERY_FIELD, p)})
    assert missing == [], "add these to tests/fixtures/results/every-field.json"


def cheap_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page without its Vega-Lite charts (vl-convert takes a second a page): the view and the template."""
    monkeypatch.setattr(render, "figures", lambda view: {k: "" for k in ("bandwidth", "pools", "latencies", "timeline")}
                        | {"matrix": {}})  # fmt: skip


VARIANTS = [(f"without-{'.'.join(p)}", without(p)) for p in OPTIONAL] + [
    (f"{'.'.join(p)}-null", nulled(p)) for p in NULLABLE
]


@pytest.mark.parametrize("data", [d for _, d in VARIANTS], ids=[name for name, _ in VARIANTS])
def test_a_result_missing_or_nulling_one_property_renders(
    data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    jsonschema.validate(data, SCHEMA)
    cheap_figures(monkeypatch)
    assert "spider-validate" in render.render(data)


@pytest.mark.parametrize(
    "data",
    [minimal(), {**EVERY_FIELD, "environment": {}}, nulled(*NULLABLE)],
    ids=["only-required", "environment-not-collected", "every-nullable-null"],
)
def test_a_result_renders_with_its_charts(data: dict[str, Any], tmp_path: Path) -> None:
    """Through `spider-validate report`, as a user renders a saved result."""
    jsonschema.validate(data, SCHEMA)
    saved, page = tmp_path / "result.json", tmp_path / "report.html"
    saved.write_text(json.dumps(data))
    outcome = CliRunner().invoke(cli.main, ["report", str(saved), "-o", str(page)], catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    assert page.read_text().startswith("<!DOCTYPE html>")
