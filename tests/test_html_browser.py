"""The HTML report in a real browser: Debian's ``chromium`` driven by playwright.

The browser is the one installed on the machine (found on PATH), never one playwright downloads.
Without chromium or playwright the test skips with the reason, unless TFLAT_REQUIRE_BROWSER=1
(set by .ci/run, which installs chromium) makes a missing browser a failure.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tflat.cli import main
from tflat.report.estimate_text import ms_text

MODEL = Path(__file__).parent / "models" / "face_detection_short_range.tflite"
DEVICES = ("pixel4", "s10")
#: Headless, quiet and offline: no sandbox (root in CI), no GPU, nothing fetched in the background.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(reason: str) -> None:
    if os.environ.get("TFLAT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"TFLAT_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        _missing("no chromium on PATH (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (the dev extra has it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The report of two devices as ``tflat estimate`` writes it, and the same estimate's JSON."""
    folder = tmp_path_factory.mktemp("html")
    devices = [a for d in DEVICES for a in ("-d", d)]
    html, js = folder / "report.html", folder / "report.json"
    assert main(["estimate", str(MODEL), *devices, "--format", "html", "-o", str(html)]) == 0
    assert main(["estimate", str(MODEL), *devices, "--format", "json", "-o", str(js)]) == 0
    return html, json.loads(js.read_text(encoding="utf-8"))


def _column(page: Any, header: str) -> list[float]:
    """The ``data-v`` numbers of a layer-table column, top to bottom, as the page shows them."""
    index = page.eval_on_selector_all(
        "table.layers thead th",
        "(ths, name) => ths.findIndex(th => th.textContent.trim().startsWith(name))",
        header,
    )
    assert index >= 0, header
    values = page.eval_on_selector_all(
        "table.layers tbody tr",
        "(rows, i) => rows.map(r => r.cells[i].getAttribute('data-v'))",
        index,
    )
    return [float(v) for v in values]


def test_report_renders_every_layer_and_the_total_and_sorts_by_ms(
    browser: Any, report: tuple[Path, list[dict[str, Any]]]
) -> None:
    path, estimates = report
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")

    assert errors == []
    layers = estimates[0]["layers"]
    rows = page.locator("table.layers tbody tr")
    assert rows.count() == len(layers)
    shown = page.eval_on_selector_all(
        "table.layers tbody tr", "rows => rows.map(r => r.cells[0].textContent)"
    )
    expected = [f"{x['subgraph']}:{x['index']}" if x["subgraph"] else str(x["index"])
                for x in layers]  # fmt: skip
    assert shown == expected
    total = page.locator("table.layers tfoot tr.tot")
    assert total.is_visible()
    total_text = total.inner_text()
    for est in estimates:
        assert ms_text(est["total_ms"]) in total_text
    overhead = page.locator("table.layers tfoot tr", has_text="overhead").inner_text()
    for est in estimates:
        assert ms_text(est["overhead_ms"]) in overhead

    # the same rows, ordered by pixel4's ms: largest first, then smallest first
    header = page.locator("table.layers thead th", has_text="pixel4 ms")
    header.click()
    ms = _column(page, "pixel4 ms")
    assert ms == sorted(ms, reverse=True) and ms[0] > 0
    assert ms[0] == max(x["latency_ms"] for x in layers if x["role"] == "kernel")
    assert sorted(_column(page, "#")) == list(range(len(layers)))  # no row lost or doubled
    header.click()
    assert _column(page, "pixel4 ms") == sorted(ms)
    assert page.locator("table.layers tfoot tr.tot").is_visible()  # the foot stays the foot
    assert errors == []
    page.close()
