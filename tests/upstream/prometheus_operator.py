"""The fields of prometheus-operator's ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1) the chart uses.

Copied from the CRDs' openAPIV3Schema at prometheus-operator v0.93.0 (descriptions left out), the fields the chart
renders and their parents only; `tests.crds._strict` rejects any other field, so a field the chart starts using
must be added here from upstream first:
  example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml  (spec.required: endpoints, selector;
      spec.selector.matchLabels; spec.endpoints[].port, .path, .interval)
  example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml  (spec.groups[].name, .rules[].alert,
      .expr, .for, .labels, .annotations)
`UPSTREAM` names the fetched repository (the `fetch` tool's mirror); when it is there, a test compares every field
here with upstream's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TAG = "v0.93.0"
UPSTREAM = Path("/work/.mirror/prometheus-operator+prometheus-operator/repo")
CRD_FILES = {
    "ServiceMonitor": "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
}
DURATION = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
_STRINGS: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}

SPECS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["endpoints", "selector"],
        "properties": {
            "selector": {"type": "object", "properties": {"matchLabels": _STRINGS}},
            "endpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string"},
                        "interval": {"type": "string", "pattern": DURATION},
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["expr"],
                                "properties": {
                                    "alert": {"type": "string"},
                                    "expr": {
                                        "x-kubernetes-int-or-string": True,
                                        "anyOf": [{"type": "integer"}, {"type": "string"}],
                                    },
                                    "for": {"type": "string", "pattern": DURATION},
                                    "labels": _STRINGS,
                                    "annotations": _STRINGS,
                                },
                            },
                        },
                    },
                },
            }
        },
    },
}


def crd_schema(kind: str) -> dict[str, Any]:
    """The object's openAPIV3Schema as the CRD would hold it (apiVersion, kind, metadata, spec)."""
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": SPECS[kind],
        },
    }
