"""Synthetic whole networks that look like the real models a device predictor is asked about.

Why: the whole-model term (how single-op kernel times compose into a network) is fitted on
measured whole networks. ImageNet CNNs alone (tflat.model.zoo) teach it little about the
models users bring: MediaPipe-style detectors and landmark regressors (fp16 weights folded by
DEQUANTIZE, PRELU, 5x5 depthwise, channel-padding PAD + ADD residuals, 64-256 px inputs) and
tiny int8 keyword spotters whose whole run takes a few microseconds. These networks are
written by tflat with random weights, so fitting on them never touches the real models a
predictor is checked on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tflat.errors import SpecError

if TYPE_CHECKING:
    from tflat.model.writer import GraphBuilder, Tensor
    from tflat.store import ModelRecord


def network_key(
    family: str, width: float, size: int, weights: str, source: str = "synthetic"
) -> str:
    """``source:family:wWIDTH:SIZE:WEIGHTS``; source ``synthetic`` (here) or ``zoo``."""
    return f"{source}:{family}:w{width:g}:{size}:{weights}"


def build_network(family: str, width: float, size: int, weights: str, seed: int = 0) -> bytes:
    """The .tflite bytes of one synthetic network (float32 input and output)."""
    from tflat.model.writer import GraphBuilder

    b = GraphBuilder(
        seed=seed,
        weights="float16" if weights == "float16" else "float32",
        description=f"tflat synthetic {network_key(family, width, size, weights)}",
    )
    if family == "blaze":
        x = b.input((1, size, size, 3))
        b.output(*_blaze(b, x, width))
    elif family == "kws":
        x = b.input((1, size, 1, 40))
        b.output(_kws(b, b.quantize(x), width))
    else:
        raise SpecError(f"unknown synthetic network family {family!r}")
    return b.to_bytes()


#: The whole networks calibration measures: (source, family, width multiplier, input size,
#: weights), all written by tflat with random weights (never the real models a predictor is
#: checked on). Measured whole, they fit how single-op kernels compose into a model (the
#: whole-model term). Source ``zoo``: ImageNet CNNs of tflat.model.zoo; source ``synthetic``:
#: ``blaze`` is a BlazeFace/BlazePose-like detector or landmark trunk (float32 or fp16
#: weights), ``kws`` an int8 keyword spotter over ``size`` frames of 40 features.
NETWORKS: tuple[tuple[str, str, float, int, str], ...] = (
    ("synthetic", "blaze", 1.0, 128, "float16"),
    ("synthetic", "blaze", 0.5, 192, "float16"),
    ("synthetic", "blaze", 1.0, 64, "float32"),
    ("synthetic", "blaze", 1.5, 256, "float16"),
    ("synthetic", "blaze", 0.75, 160, "float32"),
    ("synthetic", "blaze", 1.0, 224, "float16"),
    ("synthetic", "blaze", 2.0, 96, "float16"),
    ("synthetic", "blaze", 0.5, 128, "float32"),
    ("synthetic", "blaze", 1.25, 192, "float16"),
    ("synthetic", "blaze", 0.75, 256, "float16"),
    ("synthetic", "blaze", 1.5, 128, "float32"),
    ("synthetic", "blaze", 1.0, 160, "float16"),
    ("synthetic", "blaze", 0.75, 96, "float16"),
    ("synthetic", "blaze", 2.0, 192, "float32"),
    ("synthetic", "kws", 1.0, 5, "int8"),
    ("synthetic", "kws", 2.0, 9, "int8"),
    ("synthetic", "kws", 0.5, 13, "int8"),
    ("synthetic", "kws", 1.5, 21, "int8"),
    ("synthetic", "kws", 1.0, 49, "int8"),
    ("synthetic", "kws", 3.0, 33, "int8"),
    ("zoo", "mobilenet", 0.25, 128, "float32"),
    ("zoo", "mobilenetv2", 0.35, 96, "float16"),
    ("zoo", "squeezenet_v1_1", 1.0, 128, "float32"),
    ("zoo", "mobilenetv3_large", 0.5, 128, "float16"),
    ("zoo", "mobilenet", 0.5, 160, "float16"),
    ("zoo", "mobilenetv2", 0.5, 128, "float32"),
    ("zoo", "resnet18", 0.25, 128, "float32"),
    ("zoo", "mobilenetv3_large", 0.75, 160, "float32"),
    ("zoo", "mobilenetv2", 0.75, 192, "float16"),
    ("zoo", "densenet121", 1.0, 96, "float32"),
    ("zoo", "mobilenet", 0.75, 224, "float32"),
    ("zoo", "squeezenet_v1_1", 1.0, 224, "float16"),
    ("zoo", "mobilenetv2", 1.0, 224, "float32"),
    ("zoo", "resnet18", 0.5, 160, "float16"),
    ("zoo", "mobilenetv3_large", 1.0, 224, "float16"),
    ("zoo", "mobilenet", 1.0, 192, "float32"),
)


def all_network_keys() -> list[str]:
    """Zoo and synthetic network keys, interleaved so a cut-short phase measures both kinds."""
    from itertools import zip_longest

    keys: dict[str, list[str]] = {"zoo": [], "synthetic": []}
    for source, family, width, size, weights in NETWORKS:
        keys[source].append(network_key(family, width, size, weights, source=source))
    zoo, synthetic = keys["zoo"], keys["synthetic"]
    return [k for pair in zip_longest(synthetic, zoo) for k in pair if k is not None]


def network_bytes(key: str) -> bytes:
    """The .tflite bytes of a network named by :func:`all_network_keys`."""
    from tflat.model.zoo import build_model

    family, name, width, size, weights = key.split(":")
    if family == "zoo":
        return build_model(name, width=float(width[1:]), input_size=int(size), weights=weights)
    return build_network(name, float(width[1:]), int(size), weights)


def network_file(work: Path, key: str) -> Path:
    """The network's .tflite under ``work/networks``, written once (whole or not at all)."""
    path = work / "networks" / f"{key}.tflite"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(network_bytes(key))
        tmp.replace(path)
    return path


def network_record(key: str, path: Path) -> ModelRecord:
    """The network as the store keeps it (family tflat-zoo or tflat-synthetic)."""
    from tflat.model import read_model
    from tflat.store import ModelRecord

    graph = read_model(path)
    zoo = key.startswith("zoo:")
    return ModelRecord(
        key=key,
        name=key,
        family="tflat-zoo" if zoo else "tflat-synthetic",
        source=f"{'tflat.model.zoo' if zoo else 'tflat.calibrate.networks'} (random weights)",
        path=str(path),
        flops=sum(op.flops for op in graph.ops),
        size_bytes=graph.size_bytes,
        n_ops=len(graph.ops),
    )


def _c(width: float, channels: int) -> int:
    return max(8, round(channels * width / 8) * 8)


def _prelu(b: GraphBuilder, x: Tensor) -> Tensor:
    # GraphBuilder has no PRELU method (tflat.model is not ours to change here): its
    # low-level op writer takes any builtin, alpha goes through the builder's weights path
    # (fp16 + DEQUANTIZE when the network has fp16 weights, as converted MediaPipe models).
    alpha = b._weights((1, 1, x.shape[-1]), x, "prelu_alpha", axis=2)
    out = b._activation_like(x.shape, x, "prelu")
    b._op("PRELU", [x, alpha], [out])
    return out


def _blaze_block(
    b: GraphBuilder, x: Tensor, cout: int, kernel: int, stride: int, act: str
) -> Tensor:
    """Depthwise kxk (stride 1 or 2) + 1x1 conv, residual ADD; a stride-2 block pools the
    shortcut and a wider block pads its channels (the converter's channel PAD)."""
    import numpy as np

    cin = x.shape[-1]
    if stride == 2:
        ph, pw = kernel - 2 + x.shape[1] % 2, kernel - 2 + x.shape[2] % 2  # -> ceil(h / 2)
        y = b.pad(x, 0, ph, 0, pw)
        y = b.depthwise_conv2d(y, kernel, stride=2, padding="valid")
        short = b.pool("MAX_POOL_2D", x, 2, stride=2, padding="same")
    else:
        y = b.depthwise_conv2d(x, kernel, padding="same")
        short = x
    y = b.conv2d(y, cout, 1)
    if cout > cin:
        pads = b._const_int32(np.array([[0, 0], [0, 0], [0, 0], [0, cout - cin]]), "channel_pad")
        padded = b._activation_like((*short.shape[:3], cout), short, "pad")
        b._op("PAD", [short, pads], [padded], b._s.PadOptionsT(), "PadOptions")
        short = padded
    y = b.add(y, short, activation="relu" if act == "relu" else "none")
    if act == "prelu":
        y = _prelu(b, y)
    elif act == "hswish":
        y = b.unary("HARD_SWISH", y)
    return y


def _blaze(b: GraphBuilder, x: Tensor, width: float) -> list[Tensor]:
    """A BlazeFace-like trunk: 5x5 conv stem, single blocks then 5x5 double blocks, two heads,
    a bilinear upsample and a concat (the detector/segmenter shape)."""
    y = b.conv2d(b.pad(x, 1, 2, 1, 2), _c(width, 24), 5, stride=2, padding="valid")
    y = _prelu(b, y)
    plan = [  # (cout, kernel, stride, activation)
        (24, 3, 1, "relu"),
        (28, 5, 1, "prelu"),
        (32, 3, 2, "relu"),
        (36, 5, 1, "prelu"),
        (42, 3, 1, "relu"),
        (48, 5, 2, "prelu"),
        (56, 3, 1, "hswish"),
        (64, 5, 1, "relu"),
        (72, 3, 1, "prelu"),
        (96, 5, 2, "relu"),
        (96, 3, 1, "prelu"),
        (96, 5, 1, "hswish"),
    ]
    mid = y
    for i, (cout, k, stride, act) in enumerate(plan):
        y = _blaze_block(b, y, _c(width, cout), k, stride, act)
        if i == 8:
            mid = y
    deep = b.conv2d(y, mid.shape[-1], 1, activation="relu")
    up = b.resize_bilinear(deep, mid.shape[1:3])
    fused = b.add(up, mid)
    head_a = b.conv2d(fused, 12, 3)
    head_b = b.conv2d(y, 24, 3)
    pooled = b.mean(y, keep_dims=False)
    scores = b.unary("LOGISTIC", b.fully_connected(pooled, 16))
    return [head_a, head_b, scores]


def _kws(b: GraphBuilder, x: Tensor, width: float) -> Tensor:
    """An int8 keyword spotter: 5x1 conv, CONCATENATION (of a stream state, here channels:
    the builder concatenates the last axis) then depthwise/pointwise pairs over time, mean
    over time, FC and LOGISTIC."""
    y = b.conv2d(x, _c(width, 32), (min(5, x.shape[1]), 1), padding="valid")
    for cout in (64, 64, 64, 64):
        state = b.concat([y, y])
        t = state.shape[1]
        y = b.depthwise_conv2d(state, (min(5, t), 1), padding="valid")
        y = b.conv2d(y, _c(width, cout), 1, activation="relu")
    pooled = b.mean(y, keep_dims=False)
    out = b.unary("LOGISTIC", b.fully_connected(pooled, 1))
    return b.dequantize(out)
