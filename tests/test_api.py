"""The public API: ``import tflat`` is cheap, every listed name resolves, and the CLI and the
benchmarks need nothing else."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import tflat

REPO = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("model", "gpu", "cpu", "plans", "bench", "store", "predict", "pricing",
               "calibrate", "devices", "report", "datasets", "estimation", "errors")  # fmt: skip


def test_import_tflat_loads_no_heavy_module() -> None:
    code = (
        "import sys, tflat; heavy = [m for m in ('numpy', 'sqlalchemy', 'lightgbm', "
        "'ai_edge_litert', 'tflat.estimation', 'tflat.store') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves_even_after_the_subpackages_are_imported() -> None:
    """A public name that is also a subpackage's name (``tflat.calibrate``) would be shadowed by
    the module once anything imports it: no public name may be a module."""
    for name in SUBPACKAGES:
        importlib.import_module(f"tflat.{name}")
    for name in tflat.__all__:
        value = getattr(tflat, name)
        assert not isinstance(value, types.ModuleType), name


def _tflat_imports(path: Path) -> set[str]:
    """The tflat modules a file imports (``import tflat`` is ``tflat``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tflat"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tflat"))
    return found


def test_the_cli_uses_only_the_public_api_and_the_renderers() -> None:
    allowed = ("tflat", "tflat.errors", "tflat.cli", "tflat.report")
    for path in sorted((REPO / "src" / "tflat" / "cli").glob("*.py")):
        for module in _tflat_imports(path):
            assert module in allowed or module.startswith(("tflat.cli.", "tflat.report.")), (
                f"{path.name} imports {module}"
            )
