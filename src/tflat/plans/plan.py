"""Sampling plans: TOML files that say which op specs to benchmark.

A plan has a ``name``, a ``description``, a ``seed`` and sections, each a TOML array of
tables:

``[[grid]]``    ``kind`` plus parameters; every list is an axis of a cartesian product.
``[[random]]``  ``kind``, ``count``, ``method`` (``lhs`` or ``uniform``) plus parameters: scalars
                fixed, lists chosen from, ``{min, max, log, step}`` ranges, ``{same_as = "x"}``.
``[[prior]]``   specs of real models, as they are and jittered: ``tables`` from the vendored
                nn-Meter layer shapes (``conv``, ``dwconv``, ``fc``, ``pooling``) and/or
                ``models`` (a folder of .tflite files, relative to the plan file), with
                ``per_row`` jittered neighbours each (``jitter`` is the relative amount).
``[[specs]]``   explicit specs: ``kind`` and parameters.

Shipped plans live in ``tflat/data/plans``; a plan argument is a shipped name or a path.
"""

from __future__ import annotations

import csv
import functools
import logging
import tomllib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tflat.errors import SpecError, read_text
from tflat.model.spec import OpSpec
from tflat.plans import sampling

log = logging.getLogger(__name__)

_SECTIONS = ("grid", "random", "prior", "specs")


DEFAULT_MAX_WEIGHT_MB = 64.0
#: A plan larger than this many specs is refused before any spec is made (``--max-specs``):
#: ten million specs are already days of benchmarking, and a grid of six axes of 100 values
#: (10^12 specs) would otherwise fill the memory before anything is said.
DEFAULT_MAX_SPECS = 10**7


@dataclass(frozen=True)
class InvalidSpec:
    """A spec a plan asked for that cannot be a valid model, and why."""

    kind: str
    params: Mapping[str, Any]
    reason: str


@dataclass(frozen=True)
class PlanSpecs:
    """What a plan expands to: distinct valid specs in plan order, and the invalid ones."""

    specs: tuple[OpSpec, ...]
    invalid: tuple[InvalidSpec, ...] = ()

    def by_kind(self) -> dict[str, int]:
        return dict(Counter(s.kind for s in self.specs))


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    seed: int
    sections: tuple[tuple[str, Mapping[str, Any]], ...]
    source: str = ""
    base_dir: Path | None = field(default=None, compare=False)
    #: Specs whose fp32 weights exceed this are refused: a benchmark model should not be
    #: hundreds of MB (the prior tables hold VGG's 25088x4096 classifier, 411 MB).
    max_weight_mb: float = DEFAULT_MAX_WEIGHT_MB

    def size(self) -> int:
        """How many specs the plan asks for at most (before duplicates and invalid ones are
        dropped), known without making any: grids multiply their axes, random sections count,
        prior sections read their seed specs only. Bad section values raise SpecError."""
        total = 0
        for i, (section, body) in enumerate(self.sections):
            where = f"plan {self.name}, [[{section}]] #{i + 1}"
            total += _section_size(section, body, self.base_dir, where)
        return total

    def expand(
        self,
        *,
        seed: int | None = None,
        sample: int | None = None,
        max_specs: int | None = None,
    ) -> PlanSpecs:
        """All specs of the plan (``seed`` overrides the plan's), or a random ``sample``.

        A plan of more than ``max_specs`` specs (:data:`DEFAULT_MAX_SPECS` when None; its
        :meth:`size`, before sampling) is refused with SpecError before any spec is made.
        """
        max_specs = DEFAULT_MAX_SPECS if max_specs is None else max_specs
        size = self.size()
        if size > max_specs:
            raise SpecError(
                f"plan {self.name} expands to {size} specs, over the limit of {max_specs} "
                "(--max-specs N allows more)"
            )
        rng = np.random.default_rng(_seed(self.seed if seed is None else seed, self.name))
        specs: dict[str, OpSpec] = {}
        invalid: list[InvalidSpec] = []
        for i, (section, body) in enumerate(self.sections):
            where = f"plan {self.name}, [[{section}]] #{i + 1}"
            for item in _section(section, dict(body), rng, self.base_dir, where):
                if isinstance(item, InvalidSpec):
                    invalid.append(item)
                elif item.weight_count * 4 > self.max_weight_mb * 1e6:
                    mb = item.weight_count * 4 / 1e6
                    reason = f"{mb:.0f} MB of weights, over the plan's max_weight_mb"
                    invalid.append(
                        InvalidSpec(item.kind, item.params, f"{reason} ({self.max_weight_mb:g})")
                    )
                else:
                    specs.setdefault(item.spec_hash, item)
        chosen = list(specs.values())
        if sample is not None and sample < len(chosen):
            if sample < 0:
                raise SpecError(f"--sample must be >= 0, not {sample}")
            picks = np.sort(rng.choice(len(chosen), size=sample, replace=False))
            chosen = [chosen[int(i)] for i in picks]
        return PlanSpecs(tuple(chosen), tuple(invalid))


def _section(
    section: str, body: dict[str, Any], rng: np.random.Generator, base: Path | None, where: str
) -> Iterator[OpSpec | InvalidSpec]:
    if section in ("grid", "specs", "random") and "kind" not in body:
        raise SpecError(f"{where}: no 'kind'")
    if section in ("grid", "specs"):
        kind = str(body.pop("kind"))
        for params in sampling.grid(kind, body) if section == "grid" else [body]:
            try:
                yield OpSpec(kind, params)
            except SpecError as exc:
                yield InvalidSpec(kind.upper(), params, str(exc))
    elif section == "random":
        kind = str(body.pop("kind"))
        count = _count(body, "count", 100, where)
        body.pop("count", None)
        method = str(body.pop("method", "lhs"))
        try:
            yield from sampling.random_specs(kind, body, count, rng, method)
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from exc
    elif section == "prior":
        yield from _prior(body, rng, base, where)
    else:
        raise SpecError(f"{where}: unknown section (expected one of {', '.join(_SECTIONS)})")


def _prior(
    body: Mapping[str, Any], rng: np.random.Generator, base: Path | None, where: str
) -> Iterator[OpSpec | InvalidSpec]:
    per_row = _count(body, "per_row", 0, where)
    amount = _number(body, "jitter", 0.25, where)
    keep = _flag(body, "keep", True, where)
    for spec in _prior_seeds(body, base, where):
        if keep:
            yield spec
        yield from sampling.neighbours(spec, per_row, rng, amount)


def _prior_seeds(body: Mapping[str, Any], base: Path | None, where: str) -> list[OpSpec]:
    """The distinct specs a prior section starts from (its tables' and its models')."""
    seeds: list[OpSpec] = []
    tables = body.get("tables", [])
    if not isinstance(tables, list):
        raise SpecError(f"{where}: tables must be a list of table names")
    for table in tables:
        seeds.extend(prior_table_specs(str(table)))
    models = body.get("models")
    if models is not None:
        if not isinstance(models, str) or _escaped(models) != models:
            raise SpecError(f"{where}: models must be a folder name, not {_shown(models)}")
        folder = Path(models).expanduser()
        if not folder.is_absolute() and base is not None:
            folder = base / folder
        seeds.extend(model_specs(folder))
    if not seeds:
        raise SpecError(f"{where}: no 'tables' or 'models' with specs")
    return list({s.spec_hash: s for s in seeds}.values())


def _section_size(section: str, body: Mapping[str, Any], base: Path | None, where: str) -> int:
    if section in ("grid", "specs", "random") and "kind" not in body:
        raise SpecError(f"{where}: no 'kind'")
    if section == "specs":
        return 1
    if section == "grid":
        return sampling.grid_size({k: v for k, v in body.items() if k != "kind"})
    if section == "random":
        return _count(body, "count", 100, where)
    if section == "prior":
        per_row = _count(body, "per_row", 0, where)
        _number(body, "jitter", 0.25, where)
        keep = _flag(body, "keep", True, where)
        return len(_prior_seeds(body, base, where)) * (int(keep) + per_row)
    raise SpecError(f"{where}: unknown section (expected one of {', '.join(_SECTIONS)})")


def _count(body: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"{where}: {key} must be a whole number >= 0, not {_shown(value)}")
    return value


def _number(body: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise SpecError(f"{where}: {key} must be a number from 0 to 100, not {_shown(value)}")
    return float(value)


def _flag(body: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise SpecError(f"{where}: {key} must be true or false, not {_shown(value)}")
    return value


def _seed(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise SpecError(f"plan {name}: seed must be a whole number >= 0, not {_shown(value)}")
    return value


def _escaped(text: str) -> str:
    """``text`` with control characters written as escapes (a message stays one line)."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def model_specs(folder: Path) -> list[OpSpec]:
    """Specs of every op of every .tflite under ``folder`` that a spec can describe."""
    from tflat.model.reader import read_model
    from tflat.model.shapes import InputShapeError
    from tflat.model.spec import KIND_PARAMS, spec_from_op

    if not folder.is_dir():
        raise SpecError(f"prior models: {folder} is not a folder")
    out: list[OpSpec] = []
    skipped: Counter[str] = Counter()
    for path in sorted(folder.rglob("*.tflite")):
        try:
            graph = read_model(path)
        except InputShapeError as exc:  # a dynamic height or width: no shapes to sample from
            log.warning("prior models: %s skipped: %s", path.name, exc)
            continue
        for op in graph.ops:
            if op.type not in KIND_PARAMS:
                continue
            try:
                out.append(spec_from_op(op, graph))
            except SpecError:
                skipped[op.type] += 1
    if skipped:
        log.info("prior models: ops no spec describes: %s", dict(skipped))
    return out


@functools.cache
def _prior_rows(table: str) -> tuple[dict[str, str], ...]:
    path = resources.files("tflat") / "data" / "priors" / f"{table}.csv"
    if not path.is_file():
        raise SpecError(f"no prior table {table!r} (known: conv, dwconv, fc, pooling)")
    with path.open(encoding="utf-8") as fh:
        return tuple(csv.DictReader(fh))


def prior_table_specs(table: str) -> list[OpSpec]:
    """Specs from a vendored nn-Meter layer-shape table (``same`` padding, no activation)."""
    out = []
    for row in _prior_rows(table):
        r = {k: int(v) for k, v in row.items() if k != "model" and v not in ("", None)}
        image = {"input_h": r.get("input_h", 1), "input_w": r.get("input_w", 1), "cin": r["cin"]}
        if table == "conv":
            out.append(
                OpSpec(
                    "CONV_2D",
                    {
                        **image,
                        "cout": r["cout"],
                        "kernel": r["ks"],
                        "stride": r["stride"],
                        "groups": r.get("groups", 1),
                    },
                )
            )
        elif table == "dwconv":
            out.append(
                OpSpec("DEPTHWISE_CONV_2D", {**image, "kernel": r["ks"], "stride": r["stride"]})
            )
        elif table == "fc":
            out.append(OpSpec("FULLY_CONNECTED", {"cin": r["cin"], "cout": r["cout"]}))
        elif table == "pooling":
            for kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
                out.append(OpSpec(kind, {**image, "kernel": r["ks"], "stride": r["stride"]}))
    return out


def shipped_plans() -> list[str]:
    """Names of the plans tflat ships."""
    folder = resources.files("tflat") / "data" / "plans"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_plan(plan: str | Path) -> Plan:
    """A shipped plan by name, or a plan file by path. Bad plans raise :class:`SpecError`."""
    text: str
    base: Path | None
    if isinstance(plan, str) and plan in shipped_plans():
        res = resources.files("tflat") / "data" / "plans" / f"{plan}.toml"
        text, source, base = res.read_text(encoding="utf-8"), f"shipped:{plan}", None
    else:
        path = Path(plan)
        if not path.is_file():
            raise SpecError(
                f"no plan {str(plan)!r}: not a shipped plan ({', '.join(shipped_plans())}) "
                "nor a file"
            )
        text = read_text(path, "a TOML plan", SpecError)
        source, base = str(path), path.parent
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"plan {plan}: not valid TOML ({exc})") from exc
    return plan_from_dict(data, source=source, base_dir=base, default_name=Path(str(plan)).stem)


def plan_from_dict(
    data: Mapping[str, Any],
    *,
    source: str = "",
    base_dir: Path | None = None,
    default_name: str = "plan",
) -> Plan:
    """A plan from parsed TOML data, checked as untrusted: known keys, tables where tables
    belong, names and parameter keys without control characters (messages stay one line)."""
    default_name = _escaped(default_name)
    unknown = sorted(set(data) - {"name", "description", "seed", "max_weight_mb", *_SECTIONS})
    if unknown:
        shown = ", ".join(_escaped(str(k)) for k in unknown)
        raise SpecError(f"plan {default_name}: unknown key(s) {shown}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or _escaped(name) != name or len(name) > 200:
        raise SpecError(f"plan {default_name}: name must be one line of text, not {_shown(name)}")
    sections: list[tuple[str, Mapping[str, Any]]] = []
    for section in _SECTIONS:
        entries = data.get(section, [])
        if not isinstance(entries, list):
            raise SpecError(f"plan {default_name}: [{section}] must be [[{section}]] (a list)")
        for entry in entries:
            if not isinstance(entry, dict):
                raise SpecError(f"plan {default_name}: each [[{section}]] must be a table")
            odd = [k for k in entry if _escaped(str(k)) != k]
            if odd:
                raise SpecError(f"plan {default_name}: [[{section}]] key {_shown(odd[0])}")
            sections.append((section, dict(entry)))
    if not sections:
        raise SpecError(f"plan {default_name}: no [[grid]], [[random]], [[prior]] or [[specs]]")
    return Plan(
        name=name,
        description=str(data.get("description", "")),
        seed=_seed(data.get("seed", 0), default_name),
        sections=tuple(sections),
        source=source,
        base_dir=base_dir,
        max_weight_mb=_positive_float(
            data.get("max_weight_mb", DEFAULT_MAX_WEIGHT_MB), default_name
        ),
    )


def _positive_float(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = -1.0
    if not out > 0:
        raise SpecError(f"plan {name}: max_weight_mb must be a positive number, not {value!r}")
    return out


def summarize(plan: Plan, expanded: PlanSpecs) -> dict[str, Any]:
    """Counts by kind and each parameter's values (range or set), as plain data."""
    kinds: dict[str, dict[str, Any]] = {}
    for kind, n in sorted(expanded.by_kind().items()):
        params: dict[str, Any] = {}
        rows = [s.params for s in expanded.specs if s.kind == kind]
        for key in rows[0]:
            values = [r[key] for r in rows]
            if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                distinct = sorted(set(values))
                params[key] = (
                    distinct
                    if len(distinct) <= 8
                    else {"min": distinct[0], "max": distinct[-1], "distinct": len(distinct)}
                )
            else:
                params[key] = sorted({str(v) for v in values})[:8]
        kinds[kind] = {"count": n, "params": params}
    return {
        "plan": plan.name,
        "description": plan.description,
        "source": plan.source,
        "seed": plan.seed,
        "count": len(expanded.specs),
        "invalid": len(expanded.invalid),
        "invalid_examples": [i.reason for i in expanded.invalid[:5]],
        "by_kind": {k: v["count"] for k, v in kinds.items()},
        "kinds": kinds,
    }
