"""The CDK Terrain app (what cdktf.json runs): config -> IP plan -> stack + Helm values + cost estimate.

The configuration comes from $SPIDERPOOL_RDMA_CONFIG (default: cdk/cluster.yaml). Invalid input prints
one line per problem, exits 2 and writes nothing. Each synthesis records which file it read (CONFIG_RECORD), because
`cdktn deploy` synthesizes again: run without the variable after `make synth CONFIG=my.yaml`, it would have deployed
the default cluster; it refuses instead, naming the file the output came from.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path

from cdktn import App

from cdk import chart_values, cost, userdata
from cdk.config import DEFAULT_CONFIG, ConfigError
from cdk.ec2_types import InstanceTable
from cdk.ipplan import load_plan
from cdk.stack import ClusterStack

CONFIG_RECORD = "configuration.txt"  # in the output directory: the absolute path of the file it was synthesized from
CDKTF_JSON = Path(__file__).resolve().parents[1] / "cdktf.json"


def app_context() -> dict[str, object]:
    """The context `cdktn synth` gives the app from cdktf.json, for runs without the CLI (tests, python -m)."""
    return {"targetVersions": json.loads(CDKTF_JSON.read_text())["targetVersions"]}


def configuration(outdir: Path) -> Path:
    """$SPIDERPOOL_RDMA_CONFIG, else the default unless the output directory was synthesized from another file."""
    if named := os.environ.get("SPIDERPOOL_RDMA_CONFIG"):
        return Path(named).resolve()
    record = outdir / CONFIG_RECORD
    previous = Path(record.read_text().strip()) if record.is_file() else DEFAULT_CONFIG
    if previous != DEFAULT_CONFIG:
        raise ConfigError(
            str(outdir),
            [
                f"synthesized from {previous}, and SPIDERPOOL_RDMA_CONFIG is not set: this run would synthesize (and "
                f"`cdktn deploy` deploy) the default {DEFAULT_CONFIG} instead. Run `spiderpool-rdma up --config "
                f"{previous}`, set SPIDERPOOL_RDMA_CONFIG={previous} for cdktn, or remove {outdir} to start over"
            ],
        )
    return DEFAULT_CONFIG


def main() -> int:
    outdir = Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out"))
    try:
        config_path = configuration(outdir)
        table = InstanceTable.load()
        config, plan = load_plan(config_path, table)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Read here, not by the jsii runtime: its process keeps the environment it started with.
    app = App(context=app_context(), outdir=str(outdir))
    ClusterStack(
        app,
        config.name,
        config=config,
        plan=plan,
        table=table,
        user_data=partial(userdata.user_data_base64, config, plan),
    )
    app.synth()
    outdir = Path(app.outdir)
    (outdir / chart_values.FILE).write_text(chart_values.render(config, plan))
    (outdir / CONFIG_RECORD).write_text(f"{config_path}\n")
    print(cost.render(config, table))
    print(f"Helm values for the chart: {outdir / chart_values.FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
