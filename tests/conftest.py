"""Shared fixtures: databases (SQLite and PostgreSQL) and tiny generated single-op models.

``db_url`` runs a test once on a fresh SQLite file and once on PostgreSQL (the server named by
TFLAT_TEST_POSTGRES_URL; skipped when unset unless TFLAT_REQUIRE_POSTGRES=1, then failed).
Each PostgreSQL test gets its own schema, dropped afterwards, so tests never see each other.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def postgres_base_url() -> str | None:
    url = os.environ.get("TFLAT_TEST_POSTGRES_URL", "").strip()
    if url:
        return url
    if os.environ.get("TFLAT_REQUIRE_POSTGRES") == "1":
        pytest.fail("TFLAT_REQUIRE_POSTGRES=1 but TFLAT_TEST_POSTGRES_URL is not set")
    return None


@pytest.fixture(autouse=True)
def _no_installed_devices(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Device bundles installed by whoever runs the tests (``tflat device add``) stay out of
    them: every test sees an empty folder of installed bundles."""
    monkeypatch.setenv("TFLAT_DEVICES_DIR", str(tmp_path_factory.mktemp("installed-devices")))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema of its own (dropped after)."""
    base = postgres_base_url()
    if base is None:
        pytest.skip("no PostgreSQL (set TFLAT_TEST_POSTGRES_URL)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tflat.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database URL: a SQLite file, then a PostgreSQL schema."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


def tiny_specs(n: int, seed: int) -> list[Any]:
    """``n`` distinct, seeded, tiny single-op specs of several kinds (fast to run)."""
    from tflat.model.spec import OpSpec

    rng = random.Random(seed)
    specs: dict[str, Any] = {}
    while len(specs) < n:
        h = rng.choice([4, 6, 8, 10, 12])
        c = rng.choice([1, 2, 3, 4, 8])
        kind = rng.choice(
            ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "FULLY_CONNECTED", "MEAN"]
        )
        image = {"input_h": h, "input_w": h, "cin": c}
        if kind == "CONV_2D":
            k = rng.choice([1, 3])
            params = {**image, "cout": rng.choice([1, 2, 4, 8]), "kernel_h": k, "kernel_w": k}
        elif kind == "DEPTHWISE_CONV_2D":
            params = {**image, "kernel_h": 3, "kernel_w": 3, "stride": rng.choice([1, 2])}
        elif kind == "MAX_POOL_2D":
            params = {**image, "kernel_h": 2, "kernel_w": 2, "stride": 2}
        elif kind == "FULLY_CONNECTED":
            params = {"cin": rng.choice([4, 8, 16, 32]), "cout": rng.choice([2, 4, 8, 16])}
        else:
            params = dict(image)
        spec = OpSpec(kind, params)
        specs[spec.spec_hash] = spec
    return list(specs.values())


def write_models(folder: Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` tiny generated models and their manifest.jsonl into ``folder``."""
    from tflat.model.writer import build_spec

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for spec in tiny_specs(n, seed):
        name = f"{spec.kind.lower()}_{spec.spec_hash}.tflite"
        (folder / name).write_bytes(build_spec(spec))
        lines.append(json.dumps({"file": name, **spec.to_dict()}, sort_keys=True))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_models_200(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_models(tmp_path_factory.mktemp("tiny200"), 200, seed=7)


@pytest.fixture(scope="session")
def tiny_models_12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_models(tmp_path_factory.mktemp("tiny12"), 12, seed=3)


@pytest.fixture
def default_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """TFLAT_DB pointed at a fresh SQLite file of this test's own (never the user's database);
    returns its URL."""
    url = f"sqlite:///{tmp_path / 'default.db'}"
    monkeypatch.setenv("TFLAT_DB", url)
    return url
