"""Whole networks written with the graph builder, shaped like the models the USC study measured.

The public USC data (``tflite_cnn_ops_gpu.csv``) lists the GPU kernels of pytorchcv (imgclsmob)
CNNs converted to TFLite; each kernel name carries the node index of its ops
(``convolution_2d_5_linked_:_relu_6``). The builders here reproduce those graphs op for op:
the same shapes *and* the same node order, including what the converter did — activations as
separate ops, explicit PAD ops before VALID depthwise and 3x3 convs (mobilenets, squeezenet,
densenet), DenseNet's pre-activation batch norms as MUL + ADD, its 2x2/2 average pool split
into a 2x2/1 and a 1x1/2 pool. So a model built here and the measured row of the same
architecture describe the same kernels, which the estimate tests rely on.

Weights are random (seeded): these models are for timing and estimating, not for accuracy.
Names follow pytorchcv: ``mobilenetv2_wd2`` is MobileNetV2 at width 0.5.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tflat.errors import SpecError
from tflat.model.writer import GraphBuilder, Tensor

_WIDTH_SUFFIX = {"w1": 1.0, "w3d4": 0.75, "wd2": 0.5, "wd4": 0.25, "w5d4": 1.25, "w7d20": 0.35}


def round_channels(channels: float, divisor: int = 8) -> int:
    """pytorchcv's rounding of scaled channel counts (never below 90 % of the request)."""
    rounded = max(int(channels + divisor / 2.0) // divisor * divisor, divisor)
    if float(rounded) < 0.9 * channels:
        rounded += divisor
    return rounded


def _pad_conv(b: GraphBuilder, x: Tensor, k: int) -> Tensor:
    """The converter's explicit symmetric padding before a VALID kxk conv."""
    p = k // 2
    return b.pad(x, p, p, p, p) if p else x


def _act(b: GraphBuilder, x: Tensor, act: str) -> Tensor:
    return b.unary({"relu": "RELU", "relu6": "RELU6", "hswish": "HARD_SWISH"}[act], x)


def _conv(
    b: GraphBuilder,
    x: Tensor,
    cout: int,
    k: int = 1,
    stride: int = 1,
    act: str | None = "relu",
    padding: str = "same",
) -> Tensor:
    y = b.conv2d(x, cout, k, stride=stride, padding=padding)
    return _act(b, y, act) if act else y


def _dw(b: GraphBuilder, x: Tensor, k: int, stride: int, act: str) -> Tensor:
    y = b.depthwise_conv2d(_pad_conv(b, x, k), k, stride=stride, padding="valid")
    return _act(b, y, act)


def _classifier_head(b: GraphBuilder, x: Tensor, classes: int) -> Tensor:
    return b.fully_connected(b.mean(x, keep_dims=False), classes)


def mobilenet(b: GraphBuilder, x: Tensor, width: float = 1.0, classes: int = 1000) -> Tensor:
    """MobileNet v1: 3x3/2 conv, 13 depthwise-separable blocks, global mean, FC."""
    stages = [[32], [64], [128, 128], [256, 256], [512] * 6, [1024, 1024]]
    chans = [[int(c * width) for c in s] for s in stages]
    x = _conv(b, x, chans[0][0], 3, 2)
    for i, stage in enumerate(chans[1:]):
        for j, c in enumerate(stage):
            x = _dw(b, x, 3, 2 if j == 0 and i > 0 else 1, "relu")
            x = _conv(b, x, c)
    return _classifier_head(b, x, classes)


def mobilenetv2(b: GraphBuilder, x: Tensor, width: float = 1.0, classes: int = 1000) -> Tensor:
    """MobileNetV2: inverted residual blocks with ReLU6, 7x7 average pool, 1x1 conv classifier."""
    stages = [[16], [24, 24], [32, 32, 32], [64, 64, 64, 64, 96, 96, 96], [160, 160, 160, 320]]
    chans = [[int(c * width) for c in s] for s in stages]
    final = int(1280 * width) if width > 1.0 else 1280
    cin = int(32 * width)
    x = _conv(b, x, cin, 3, 2, "relu6")
    for i, stage in enumerate(chans):
        for j, cout in enumerate(stage):
            stride = 2 if j == 0 and i > 0 else 1
            mid = cin * 6 if (i, j) != (0, 0) else cin
            y = _conv(b, x, mid, 1, 1, "relu6")
            y = _dw(b, y, 3, stride, "relu6")
            y = _conv(b, y, cout, act=None)
            x = b.add(y, x) if cin == cout and stride == 1 else y
            cin = cout
    x = _conv(b, x, final, 1, 1, "relu6")
    x = b.pool("AVERAGE_POOL_2D", x, (x.shape[1], x.shape[2]), padding="valid")
    x = b.conv2d(x, classes, 1)
    return b.reshape(x, (1, classes))


def mobilenetv3_large(
    b: GraphBuilder, x: Tensor, width: float = 1.0, classes: int = 1000
) -> Tensor:
    """MobileNetV3-Large: hard-swish, squeeze-and-excite (MEAN, 1x1 convs, RELU6 * 1/6, MUL)."""
    stages = [[16], [24, 24], [40, 40, 40], [80, 80, 80, 80, 112, 112], [160, 160, 160]]
    exps = [[16], [64, 72], [72, 120, 120], [240, 200, 184, 184, 480, 672], [672, 960, 960]]
    k3 = [[1], [1, 1], [0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0]]
    relu = [[1], [1, 1], [1, 1, 1], [0, 0, 0, 0, 0, 0], [0, 0, 0]]
    se = [[0], [0, 0], [1, 1, 1], [0, 0, 0, 0, 1, 1], [1, 1, 1]]
    init, final, mid_head = 16, 960, 1280
    if width != 1.0:
        stages = [[round_channels(c * width) for c in s] for s in stages]
        exps = [[round_channels(c * width) for c in s] for s in exps]
        init = round_channels(init * width)
        if width > 1.0:
            final = round_channels(final * width)
    cin = init
    x = _conv(b, x, cin, 3, 2, "hswish")
    for i, stage in enumerate(stages):
        for j, cout in enumerate(stage):
            stride = 2 if j == 0 and i > 0 else 1
            exp, act = exps[i][j], ("relu" if relu[i][j] else "hswish")
            y = _conv(b, x, exp, 1, 1, act) if exp != cout else x
            y = _dw(b, y, 3 if k3[i][j] else 5, stride, act)
            if se[i][j]:
                y = _squeeze_excite(b, y, round_channels(exp / 4))
            y = _conv(b, y, cout, act=None)
            x = b.add(y, x) if cin == cout and stride == 1 else y
            cin = cout
    x = _conv(b, x, final, 1, 1, "hswish")
    x = b.pool("AVERAGE_POOL_2D", x, (x.shape[1], x.shape[2]), padding="valid")
    x = _conv(b, x, mid_head, 1, 1, "hswish")
    x = b.conv2d(x, classes, 1)
    return b.reshape(x, (1, classes))


def _squeeze_excite(b: GraphBuilder, x: Tensor, mid: int) -> Tensor:
    s = b.mean(x, keep_dims=True)
    s = _conv(b, s, mid, act="relu")
    s = _conv(b, s, x.shape[-1], act="relu6")  # hard sigmoid: the +3 is folded into the bias
    s = b.mul(s, b.constant([1.0 / 6.0], "one_sixth"))
    return b.mul(x, s)


def resnet18(b: GraphBuilder, x: Tensor, width: float = 1.0, classes: int = 1000) -> Tensor:
    """ResNet-18: 7x7/2 conv, 3x3/2 max pool, 8 basic blocks, global mean, FC."""
    stages = [[64, 64], [128, 128], [256, 256], [512, 512]]
    last = (len(stages) - 1, len(stages[-1]) - 1)
    chans = [
        [c if (i, j) == last else int(c * width) for j, c in enumerate(s)]
        for i, s in enumerate(stages)
    ]
    x = _conv(b, x, int(64 * width), 7, 2)
    x = b.pool("MAX_POOL_2D", x, 3, stride=2, padding="same")
    for i, stage in enumerate(chans):
        for j, cout in enumerate(stage):
            stride = 2 if j == 0 and i > 0 else 1
            y = _conv(b, x, cout, 3, stride)
            y = _conv(b, y, cout, 3, act=None)
            identity = x
            if stride != 1 or x.shape[-1] != cout:
                identity = b.conv2d(x, cout, 1, stride=stride)
            x = b.unary("RELU", b.add(y, identity))
    return _classifier_head(b, x, classes)


def squeezenet_v1_1(b: GraphBuilder, x: Tensor, width: float = 1.0, classes: int = 1000) -> Tensor:
    """SqueezeNet v1.1: fire modules (squeeze, 1x1 and 3x3 expand, concat), conv classifier."""
    if width != 1.0:
        raise SpecError("squeezenet_v1_1 has no width variants")
    fires = [
        (16, 64),
        (16, 64),
        None,
        (32, 128),
        (32, 128),
        None,
        (48, 192),
        (48, 192),
        (64, 256),
        (64, 256),
    ]
    x = _conv(b, x, 64, 3, 2, padding="valid")
    x = b.pool("MAX_POOL_2D", x, 3, stride=2, padding="valid")
    for fire in fires:
        if fire is None:
            x = b.pool("MAX_POOL_2D", x, 3, stride=2, padding="valid")
            continue
        squeeze, expand = fire
        s = _conv(b, x, squeeze)
        e1 = _conv(b, s, expand)
        e3 = _conv(b, _pad_conv(b, s, 3), expand, 3, padding="valid")
        x = b.concat([e1, e3])
    x = _conv(b, x, classes)
    return b.mean(x, keep_dims=False)


def _bn_relu(b: GraphBuilder, x: Tensor) -> Tensor:
    """A batch norm the converter could not fold (it follows a concat): MUL, ADD, RELU."""
    c = x.shape[-1]
    x = b.mul(x, b.constant([1.0] * c, "bn_scale"))
    x = b.add(x, b.constant([0.0] * c, "bn_shift"))
    return b.unary("RELU", x)


def densenet121(b: GraphBuilder, x: Tensor, width: float = 1.0, classes: int = 1000) -> Tensor:
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16), pre-activation dense layers."""
    if width != 1.0:
        raise SpecError("densenet121 has no width variants")
    growth, blocks = 32, (6, 12, 24, 16)
    x = b.pad(x, 3, 3, 3, 3)
    x = _conv(b, x, 64, 7, 2, padding="valid")
    x = b.pool("MAX_POOL_2D", x, 3, stride=2, padding="same")
    for i, layers in enumerate(blocks):
        for _ in range(layers):
            y = _conv(b, _bn_relu(b, x), 4 * growth)
            y = b.conv2d(_pad_conv(b, y, 3), growth, 3, padding="valid")
            x = b.concat([x, y])
        if i < len(blocks) - 1:
            x = b.conv2d(_bn_relu(b, x), x.shape[-1] // 2, 1)
            x = b.pool("AVERAGE_POOL_2D", x, 2, stride=1, padding="valid")
            x = b.pool("AVERAGE_POOL_2D", x, 1, stride=2, padding="valid")
    return _classifier_head(b, _bn_relu(b, x), classes)


Builder = Callable[..., Tensor]
ARCHITECTURES: dict[str, Builder] = {
    "mobilenet": mobilenet,
    "mobilenetv2": mobilenetv2,
    "mobilenetv3_large": mobilenetv3_large,
    "resnet18": resnet18,
    "squeezenet_v1_1": squeezenet_v1_1,
    "densenet121": densenet121,
}
#: The USC model names the builders reproduce (pytorchcv names).
USC_MODELS = (
    "mobilenet_w1",
    "mobilenet_w3d4",
    "mobilenet_wd2",
    "mobilenet_wd4",
    "mobilenetv2_w1",
    "mobilenetv2_w3d4",
    "mobilenetv2_wd2",
    "mobilenetv2_wd4",
    "mobilenetv3_large_w1",
    "mobilenetv3_large_w3d4",
    "mobilenetv3_large_w5d4",
    "mobilenetv3_large_w7d20",
    "mobilenetv3_large_wd2",
    "resnet18",
    "squeezenet_v1_1",
    "densenet121",
)


def parse_name(name: str) -> tuple[str, float]:
    """``mobilenetv2_wd2`` -> (``mobilenetv2``, 0.5); a bare architecture has width 1."""
    if name in ARCHITECTURES:
        return name, 1.0
    m = re.fullmatch(r"(.+)_(w\d*d?\d*)", name)
    if m and m.group(1) in ARCHITECTURES and m.group(2) in _WIDTH_SUFFIX:
        return m.group(1), _WIDTH_SUFFIX[m.group(2)]
    raise SpecError(
        f"unknown zoo model {name!r}; known: {', '.join(sorted(ARCHITECTURES))} "
        f"(with a width suffix {', '.join(_WIDTH_SUFFIX)})"
    )


def build_model(
    name: str,
    *,
    width: float | None = None,
    input_size: int = 224,
    classes: int = 1000,
    weights: str = "float32",
    seed: int = 0,
) -> bytes:
    """The .tflite bytes of a zoo network (``name`` as in :data:`USC_MODELS` or an
    architecture with ``width``), float32 input 1 x ``input_size`` x ``input_size`` x 3."""
    arch, parsed_width = parse_name(name)
    b = GraphBuilder(seed=seed, weights=weights, description=f"tflat zoo {name}")
    x = b.input((1, input_size, input_size, 3))
    b.output(
        ARCHITECTURES[arch](b, x, width=parsed_width if width is None else width, classes=classes)
    )
    return b.to_bytes()
