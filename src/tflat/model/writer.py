"""Single-op benchmark models from op specs, written with the graph builder.

:func:`build_spec` turns an :class:`~tflat.model.spec.OpSpec` into the bytes of a model that
holds that one op (inside QUANTIZE/DEQUANTIZE for int8 specs); :func:`write_spec` also reads it
back and checks it against the spec. The builder itself lives in :mod:`tflat.model.builder`
(tensors, generic ops, packing) and :mod:`tflat.model.layers` (typed network ops); both names
are re-exported here.
"""

from __future__ import annotations

from typing import Any

from tflat.errors import SpecError
from tflat.model.builder import INT8_SCALE, Tensor
from tflat.model.layers import GraphBuilder
from tflat.model.ops import Graph
from tflat.model.spec import OpSpec

__all__ = ["INT8_SCALE", "GraphBuilder", "Tensor", "build_spec", "write_spec"]


def build_spec(spec: OpSpec) -> bytes:
    """The single-op model of ``spec`` as .tflite bytes; weights seeded by the spec hash.

    int8 specs get QUANTIZE before and DEQUANTIZE after the op, so the model's inputs and
    outputs stay float32 as in quantized models converted by TFLite.
    """
    p = spec.params
    dtype = p.get("dtype", "float32")
    b = GraphBuilder(
        seed=int(spec.spec_hash, 16),
        weights="float16" if dtype == "float16" else "float32",
        description=f"tflat single-op model {spec.kind} {spec.spec_hash}",
    )
    kind = spec.kind

    def wrap(t: Tensor) -> Tensor:
        return b.quantize(t) if dtype == "int8" else t

    image = (1, p.get("input_h", 1), p.get("input_w", 1), p.get("cin", 1))
    ins: list[Tensor] = []
    if kind == "CONCATENATION":
        ins = [
            b.input((1, p["input_h"], p["input_w"], c), f"input{i}")
            for i, c in enumerate(p["cins"])
        ]
        y = b.concat([wrap(t) for t in ins], activation=p["activation"])
    elif kind in ("ADD", "MUL"):
        other = {"none": image, "channel": (1, 1, 1, p["cin"]), "scalar": (1,)}[p["broadcast"]]
        ins = [b.input(image, "input0"), b.input(other, "input1")]
        y = b.binary(kind, wrap(ins[0]), wrap(ins[1]), activation=p["activation"])
    elif kind in ("FULLY_CONNECTED", "SOFTMAX"):
        ins = [b.input((p["batch"], p["cin"]))]
        x = wrap(ins[0])
        if kind == "SOFTMAX":
            y = b.softmax(x)
        else:
            y = b.fully_connected(x, p["cout"], activation=p["activation"], bias=p["bias"])
    else:
        ins = [b.input(image)]
        y = _image_op(b, kind, wrap(ins[0]), p)
    if dtype == "int8":
        y = b.dequantize(y)
    b.output(y)
    return b.to_bytes()


def _image_op(b: GraphBuilder, kind: str, x: Tensor, p: Any) -> Tensor:
    kernel = (p.get("kernel_h", 1), p.get("kernel_w", 1))
    if kind == "CONV_2D":
        return b.conv2d(
            x, p["cout"], kernel, dilation=p["dilation"], groups=p["groups"], **_window(p)
        )
    if kind == "DEPTHWISE_CONV_2D":
        return b.depthwise_conv2d(
            x,
            kernel,
            dilation=p["dilation"],
            depth_multiplier=p["depth_multiplier"],
            **_window(p),
        )
    if kind == "TRANSPOSE_CONV":
        return b.transpose_conv(x, p["cout"], kernel, bias=p["bias"], **_window(p))
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return b.pool(kind, x, kernel, **_window(p))
    if kind == "MEAN":
        return b.mean(x, keep_dims=p["keep_dims"])
    if kind == "PAD":
        return b.pad(x, p["pad_top"], p["pad_bottom"], p["pad_left"], p["pad_right"])
    if kind == "RESIZE_BILINEAR":
        return b.resize_bilinear(
            x,
            (p["output_h"], p["output_w"]),
            align_corners=p["align_corners"],
            half_pixel_centers=p["half_pixel_centers"],
        )
    if kind == "RESHAPE":
        return b.reshape(x, p["shape"])
    return b.unary(kind, x)


def _window(p: Any) -> dict[str, Any]:
    """What every sliding-window op (convolutions, pools) takes from its spec alike."""
    return {"stride": p["stride"], "padding": p["padding"], "activation": p["activation"]}


def write_spec(spec: OpSpec) -> tuple[bytes, Graph]:
    """Build ``spec``'s model and check it by reading it back: returns (bytes, Graph).

    Raises :class:`SpecError` naming the spec when the model cannot be built or what was
    written does not read back as the spec.
    """
    from tflat.errors import ModelFormatError
    from tflat.model.reader import read_model
    from tflat.model.spec import check_graph

    try:
        data = build_spec(spec)
        graph = read_model(data)
    except (SpecError, ModelFormatError) as exc:
        raise SpecError(f"{spec.label}: {exc}") from exc
    check_graph(graph, spec)
    return data, graph
