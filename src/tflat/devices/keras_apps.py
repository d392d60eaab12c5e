"""Networks shaped like ``keras.applications`` exports, written with tflat's own writer.

The MobileNetV4 paper's Table 6 times baselines that ``keras.applications`` has (MobileNet v1,
MobileNetV2 at widths 0.5-2.0, MobileNetV3-Large 0.5, ConvNeXt-Small) on the Pixel 7 and
Galaxy S23 GPUs. To transfer those timings tflat needs the graphs: these builders reproduce, op
for op, what the TFLite converter writes for the Keras models with a 1 x 224 x 224 x 3 input
(checked against real exports during development: same op types, order and shapes). Keras
layers map to TFLite ops as the converter folds them: batch norms into convolution bias,
ReLU/ReLU6 into the op before, ``ZeroPadding2D`` + VALID into SAME, MobileNetV3's
``Rescaling`` into MUL + ADD and its hard sigmoid into a RELU6 convolution and a MUL by 1/6,
ConvNeXt's layer norm into MEAN, SQUARED_DIFFERENCE, RSQRT and element-wise ops.

Weights are random (seeded); latency does not depend on them. No TensorFlow is needed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tflat.model.writer import GraphBuilder, Tensor


def make_divisible(value: float, divisor: int = 8) -> int:
    """Keras' ``_make_divisible``: round to a multiple of ``divisor``, never 10 % below."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def _classifier_conv(b: GraphBuilder, x: Tensor, classes: int) -> Tensor:
    """1x1 convolution to the classes, reshape to (1, classes), softmax."""
    x = b.conv2d(x, classes, 1)
    return b.softmax(b.reshape(x, (1, classes)))


def mobilenet_v1(b: GraphBuilder, x: Tensor, alpha: float = 1.0, classes: int = 1000) -> Tensor:
    """``keras.applications.MobileNet``: 3x3/2 conv, 13 depthwise-separable blocks (ReLU6
    fused), global mean kept 4-D, 1x1 conv classifier."""

    def ch(c: int) -> int:
        return int(c * alpha)

    x = b.conv2d(x, ch(32), 3, stride=2, activation="relu6")
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5,
            (1024, 2), (1024, 1)]  # fmt: skip
    for cout, stride in plan:
        x = b.depthwise_conv2d(x, 3, stride=stride, activation="relu6")
        x = b.conv2d(x, ch(cout), 1, activation="relu6")
    return _classifier_conv(b, b.mean(x, keep_dims=True), classes)


#: MobileNetV2's inverted residual stages: (expansion, output channels, repeats, stride).
_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
              (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip


def mobilenet_v2(b: GraphBuilder, x: Tensor, alpha: float = 1.0, classes: int = 1000) -> Tensor:
    """``keras.applications.MobileNetV2``: inverted residuals (ReLU6 fused, linear
    projection, ADD when shapes match), 1x1 conv to 1280 (scaled above width 1), global mean,
    fully connected classifier."""
    cin = make_divisible(32 * alpha)
    x = b.conv2d(x, cin, 3, stride=2, activation="relu6")
    for expansion, channels, repeats, first_stride in _V2_STAGES:
        cout = make_divisible(channels * alpha)
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            y = x
            if expansion != 1:
                y = b.conv2d(y, cin * expansion, 1, activation="relu6")
            y = b.depthwise_conv2d(y, 3, stride=stride, activation="relu6")
            y = b.conv2d(y, cout, 1)
            x = b.add(x, y) if stride == 1 and cin == cout else y
            cin = cout
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = b.conv2d(x, last, 1, activation="relu6", padding="valid")
    # Keras' zero-initialised Dense bias is dropped by the converter
    x = b.fully_connected(b.mean(x, keep_dims=False), classes, bias=False)
    return b.softmax(x)


#: MobileNetV3-Large blocks: (kernel, expansion, channels, squeeze-excite, activation, stride).
_V3_LARGE = (
    (3, 1, 16, False, "relu", 1), (3, 4, 24, False, "relu", 2), (3, 3, 24, False, "relu", 1),
    (5, 3, 40, True, "relu", 2), (5, 3, 40, True, "relu", 1), (5, 3, 40, True, "relu", 1),
    (3, 6, 80, False, "hswish", 2), (3, 2.5, 80, False, "hswish", 1),
    (3, 2.3, 80, False, "hswish", 1), (3, 2.3, 80, False, "hswish", 1),
    (3, 6, 112, True, "hswish", 1), (3, 6, 112, True, "hswish", 1),
    (5, 6, 160, True, "hswish", 2), (5, 6, 160, True, "hswish", 1),
    (5, 6, 160, True, "hswish", 1),
)  # fmt: skip


def _scalar(value: float) -> np.ndarray:
    """A 0-d float32 constant (the converter writes scalar operands with shape [])."""
    return np.asarray(value, dtype=np.float32)


def _v3_activation(b: GraphBuilder, y: Tensor, act: str) -> Tensor:
    """MobileNetV3's hard swish follows as its own op (the converter fuses no hard swish)."""
    return b.unary("HARD_SWISH", y) if act == "hswish" else y


def mobilenet_v3_large(
    b: GraphBuilder, x: Tensor, alpha: float = 1.0, classes: int = 1000
) -> Tensor:
    """``keras.applications.MobileNetV3Large`` (with its preprocessing): rescaling as MUL +
    ADD, 16-channel 3x3/2 stem with hard swish, the 15 blocks (squeeze-excite: MEAN, 1x1 ReLU
    conv, 1x1 ReLU6 conv, MUL by 1/6, MUL), 1x1 conv to 960 x alpha, MEAN, 1x1 conv to 1280
    with hard swish, 1x1 conv classifier."""
    x = b.add(b.mul(x, b.constant(_scalar(1 / 127.5))), b.constant(_scalar(-1.0)))
    x = b.unary("HARD_SWISH", b.conv2d(x, 16, 3, stride=2))
    cin = 16
    for k, expansion, channels, se, act, stride in _V3_LARGE:
        cout = make_divisible(channels * alpha)
        fused = "relu" if act == "relu" else "none"
        y = x
        if expansion != 1:
            y = b.conv2d(y, make_divisible(cin * expansion), 1, activation=fused)
            y = _v3_activation(b, y, act)
        y = b.depthwise_conv2d(y, k, stride=stride, activation=fused)
        y = _v3_activation(b, y, act)
        if se:
            c = y.shape[-1]
            s = b.mean(y, keep_dims=True)
            s = b.conv2d(s, make_divisible(c * 0.25), 1, activation="relu")
            s = b.conv2d(s, c, 1, activation="relu6")
            s = b.mul(s, b.constant(_scalar(1 / 6)))
            y = b.mul(y, s)
        y = b.conv2d(y, cout, 1)
        x = b.add(x, y) if stride == 1 and cin == cout else y
        cin = cout
    x = b.unary("HARD_SWISH", b.conv2d(x, make_divisible(cin * 6), 1))
    x = b.mean(x, keep_dims=True)
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = b.unary("HARD_SWISH", b.conv2d(x, last, 1))
    return _classifier_conv(b, x, classes)


class KerasGraphBuilder(GraphBuilder):
    """:class:`GraphBuilder` with the few ops a Keras ConvNeXt export has beyond it: SUB,
    SQUARED_DIFFERENCE, NEG, RSQRT, GELU, MEAN over chosen axes, and FULLY_CONNECTED that
    keeps a 4-D input's dimensions (a Dense layer on an image)."""

    def _elementwise(self, kind: str, inputs: list[Tensor], shape: tuple[int, ...],
                     options: str | None = None) -> Tensor:  # fmt: skip
        out = self._activation_like(shape, inputs[0], kind.lower())
        opt = getattr(self._s, options + "T")() if options else None
        self._op(kind, inputs, [out], opt, options)
        return out

    def sub(self, a: Tensor, b: Tensor) -> Tensor:
        return self._elementwise("SUB", [a, b], _broadcast(a, b), "SubOptions")

    def squared_difference(self, a: Tensor, b: Tensor) -> Tensor:
        shape = _broadcast(a, b)
        return self._elementwise("SQUARED_DIFFERENCE", [a, b], shape, "SquaredDifferenceOptions")

    def neg(self, x: Tensor) -> Tensor:
        return self._elementwise("NEG", [x], x.shape, "NegOptions")

    def rsqrt(self, x: Tensor) -> Tensor:
        return self._elementwise("RSQRT", [x], x.shape)

    def gelu(self, x: Tensor) -> Tensor:
        return self._elementwise("GELU", [x], x.shape, "GeluOptions")

    def mean_axes(self, x: Tensor, axes: tuple[int, ...], keep_dims: bool) -> Tensor:
        """MEAN over ``axes`` (a layer norm's statistics: the channel axis, kept)."""
        rank = len(x.shape)
        picked = {a % rank for a in axes}
        shape = tuple(
            1 if i in picked else d for i, d in enumerate(x.shape) if keep_dims or i not in picked
        )
        out = self._activation_like(shape, x, "mean")
        opt = self._s.ReducerOptionsT()
        opt.keepDims = keep_dims
        axes_t = self._const_int32(list(axes), "mean_axes")
        self._op("MEAN", [x, axes_t], [out], opt, "ReducerOptions")
        return out

    def dense(self, x: Tensor, units: int) -> Tensor:
        """FULLY_CONNECTED over the last axis, other dimensions kept, no bias (Keras' zero
        bias is dropped by the converter)."""
        w = self._weights((units, x.shape[-1]), x, "fc_weights", axis=0)
        out = self._activation_like((*x.shape[:-1], units), x, "fc")
        opt = self._s.FullyConnectedOptionsT()
        opt.keepNumDims = len(x.shape) > 2
        self._op("FULLY_CONNECTED", [x, w], [out], opt, "FullyConnectedOptions", 5)
        return out


def _broadcast(a: Tensor, b: Tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in np.broadcast_shapes(a.shape, b.shape))


def _layer_norm(b: KerasGraphBuilder, x: Tensor) -> Tensor:
    """Keras LayerNormalization over the last axis as the converter writes it (unit gamma,
    zero beta folded away): mean, variance, rsqrt, then x * s + (-mean) * s."""
    c = x.shape[-1]
    mean = b.mean_axes(x, (len(x.shape) - 1,), keep_dims=True)
    neg = b.neg(mean)
    var = b.mean_axes(b.squared_difference(x, mean), (len(x.shape) - 1,), keep_dims=True)
    inv = b.rsqrt(b.add(var, b.constant(_scalar(1e-6))))
    gamma_shape = (1,) * (len(x.shape) - 1) + (c,)
    scale = b.mul(inv, b.constant(np.ones(gamma_shape, dtype=np.float32)))
    shift = b.mul(neg, scale)
    return b.add(b.mul(x, scale), shift)


#: ConvNeXt-Small: blocks and channels per stage.
CONVNEXT_SMALL = ((3, 96), (3, 192), (27, 384), (3, 768))


def convnext(
    b: KerasGraphBuilder,
    x: Tensor,
    stages: tuple[tuple[int, int], ...] = CONVNEXT_SMALL,
    classes: int = 1000,
) -> Tensor:
    """``keras.applications.ConvNeXt*`` (with its preprocessing): normalisation as SUB + MUL,
    4x4/4 stem and layer norm; per block a 7x7 depthwise convolution (a grouped CONV_2D in a
    Keras 3 export), layer norm, Dense x4, GELU, Dense back (layer scale folded into it),
    residual ADD; between stages a layer norm and a 2x2/2 convolution; global mean, layer
    norm, Dense classifier, softmax."""
    x = b.sub(x, b.constant(np.full((1, 1, 1, 3), 0.45, dtype=np.float32)))
    x = b.mul(x, b.constant(np.full((1, 1, 1, 3), 4.4, dtype=np.float32)))
    for i, (blocks, dim) in enumerate(stages):
        if i == 0:
            x = _layer_norm(b, b.conv2d(x, dim, 4, stride=4, padding="valid"))
        else:
            x = b.conv2d(_layer_norm(b, x), dim, 2, stride=2, padding="valid")
        for _ in range(blocks):
            y = b.conv2d(x, dim, 7, groups=dim)
            y = b.dense(b.gelu(b.dense(_layer_norm(b, y), 4 * dim)), dim)
            x = b.add(x, y)
    x = _layer_norm(b, b.mean_axes(x, (1, 2), keep_dims=False))
    return b.softmax(b.dense(x, classes))


#: The Table 6 baselines of the MobileNetV4 paper that keras.applications has: paper name ->
#: (builder, width).
TABLE6_MODELS: dict[str, tuple[str, float]] = {
    "MobileNet-V1": ("mobilenet_v1", 1.0),
    "MobileNet-V2-0.5x": ("mobilenet_v2", 0.5),
    "MobileNet-V2": ("mobilenet_v2", 1.0),
    "MobileNet-V2-1.5x": ("mobilenet_v2", 1.5),
    "MobileNet-V2-2.0x": ("mobilenet_v2", 2.0),
    "MobileNet-V3L-0.5x": ("mobilenet_v3_large", 0.5),
    "ConvNext-S": ("convnext_small", 1.0),
}


def build_keras_app(name: str, width: float = 1.0, input_size: int = 224, seed: int = 0) -> bytes:
    """The .tflite bytes of ``name`` (mobilenet_v1, mobilenet_v2, mobilenet_v3_large,
    convnext_small) at ``width``, float32 input 1 x ``input_size`` x ``input_size`` x 3."""
    b = KerasGraphBuilder(seed=seed, description=f"tflat keras-like {name} {width:g}")
    x = b.input((1, input_size, input_size, 3))
    if name == "convnext_small":
        out = convnext(b, x)
    else:
        builders: dict[str, Callable[..., Tensor]] = {
            "mobilenet_v1": mobilenet_v1,
            "mobilenet_v2": mobilenet_v2,
            "mobilenet_v3_large": mobilenet_v3_large,
        }
        if name not in builders:
            raise ValueError(f"unknown Keras-like network {name!r}")
        out = builders[name](b, x, alpha=width)
    b.output(out)
    return b.to_bytes()
