"""Render the device list of ``tflat devices``: what each predictor is and where it came from."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

#: Columns shown, in order; a card without one of them shows an empty cell.
FIELDS = ("id", "name", "soc", "gpu", "precision", "basis", "source", "trained_at")


def card_dict(card: Any) -> dict[str, Any]:
    """A device card as a plain dict (a dataclass, an object with ``to_dict``, or a mapping)."""
    if hasattr(card, "to_dict"):
        data = dict(card.to_dict())
    elif dataclasses.is_dataclass(card) and not isinstance(card, type):
        data = dataclasses.asdict(card)
    elif isinstance(card, dict):
        data = dict(card)
    else:
        data = {f: getattr(card, f, None) for f in FIELDS}
    if "source" not in data and "provenance" in data:
        data["source"] = data["provenance"]
    if "basis" not in data:
        from tflat.pricing.predictors import device_basis

        data["basis"] = device_basis(data.get("provenance"))
    return {k: _plain(v) for k, v in data.items()}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def to_json(cards: Sequence[Any]) -> str:
    return json.dumps([card_dict(c) for c in cards], indent=2) + "\n"


def to_table(cards: Sequence[Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"{len(cards)} devices")
    for col in FIELDS:
        # the id is what users type; an address folds rather than losing its end to "…"
        table.add_column(
            col,
            no_wrap=col in ("id", "trained_at"),
            overflow="fold" if col == "source" else "ellipsis",
        )
    for card in cards:
        data = card_dict(card)
        row = {col: _cell(data.get(col)) for col in FIELDS}
        # the date is enough here; --format json keeps the full timestamp
        row["trained_at"] = row["trained_at"][:10]
        table.add_row(*row.values())
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
