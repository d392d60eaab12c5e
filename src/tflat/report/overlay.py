"""Model Explorer node data: an estimate as a latency heat map over the model's graph.

Google's Model Explorer (``pip install ai-edge-model-explorer``) draws a .tflite graph and can
colour its nodes from "node data" JSON files::

    model-explorer model.tflite --node_data_paths=model.pixel4.json

The format is Model Explorer's ``GraphNodeData``: ``results`` maps a node id to
``{"value": number}``, and ``gradient`` maps the range of values (stop 0 = smallest, 1 =
largest) to background colours. For TFLite graphs the node ids are the op indices, so each
op's value is its own estimated latency in ms: a kernel's time on its main op, 0 on the ops
fused into it, which keeps Model Explorer's aggregated "sum" equal to the layers' total.
Ops outside the main subgraph are not included (they have no estimate).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tflat.estimation import Estimate

#: White (cheapest op) through yellow to dark red (most expensive op).
GRADIENT = (
    {"stop": 0, "bgColor": "#ffffff"},
    {"stop": 0.25, "bgColor": "#fee391"},
    {"stop": 0.6, "bgColor": "#fc8d59"},
    {"stop": 1, "bgColor": "#b30000", "textColor": "#ffffff"},
)


def to_node_data(est: Estimate) -> dict[str, Any]:
    """The node-data object for one device's estimate."""
    results = {
        str(layer.index): {"value": round(layer.latency_ms, 6)}
        for layer in est.layers
        if layer.subgraph == 0
    }
    return {"results": results, "gradient": [dict(g) for g in GRADIENT]}


def to_json(est: Estimate) -> str:
    return json.dumps(to_node_data(est), indent=2) + "\n"


def overlay_paths(path: Path, devices: list[str]) -> list[Path]:
    """Where each device's overlay goes: ``path`` itself for one device, else one file per
    device named ``<stem>.<device>.json`` next to it (Model Explorer loads several at once)."""
    if len(devices) == 1:
        return [path]
    suffix = path.suffix or ".json"
    safe = [d.replace(":", "_").replace("/", "_") for d in devices]
    return [path.with_name(f"{path.stem}.{d}{suffix}") for d in safe]
