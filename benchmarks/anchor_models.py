"""The networks of the published anchor rows, written with tflat's own graph builder.

The TFLite performance page timed TF-slim's float MobileNet v1, Inception-ResNet-V2 and
Inception-v4; the EfficientNet-lite README timed its five lite models. These builders reproduce
those architectures as the TFLite converter emits them (batch norm folded into the
convolutions, ReLU/ReLU6 fused, SAME padding unless the paper says VALID, the residual scale of
Inception-ResNet folded into its 1x1 convolution): layer shapes from the papers and the
reference code (TF-slim nets/, tensorflow/tpu efficientnet_lite_builder.py), weights random.
Used only to compare time *ratios* between models on one device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from tflat.model.writer import GraphBuilder, Tensor


def _conv(b: GraphBuilder, x: Tensor, cout: int, k: int | Sequence[int], stride: int = 1,
          padding: str = "same", act: str = "relu") -> Tensor:  # fmt: skip
    return b.conv2d(x, cout, k, stride=stride, padding=padding, activation=act)


def _maxpool(b: GraphBuilder, x: Tensor) -> Tensor:
    return b.pool("MAX_POOL_2D", x, 3, stride=2, padding="valid")


def _avgpool_same(b: GraphBuilder, x: Tensor) -> Tensor:
    return b.pool("AVERAGE_POOL_2D", x, 3, stride=1, padding="same")


def _head(b: GraphBuilder, x: Tensor, classes: int = 1001) -> Tensor:
    x = b.mean(x, keep_dims=False)
    return b.softmax(b.fully_connected(x, classes))


def mobilenet_v1(b: GraphBuilder, x: Tensor) -> Tensor:
    """TF-slim MobileNet v1 1.0 (ReLU6), input 224."""
    x = _conv(b, x, 32, 3, 2, act="relu6")
    for cout, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5,
                         (1024, 2), (1024, 1)]:  # fmt: skip
        x = b.depthwise_conv2d(x, 3, stride=stride, activation="relu6")
        x = _conv(b, x, cout, 1, act="relu6")
    return _head(b, x)


def inception_resnet_v2(b: GraphBuilder, x: Tensor) -> Tensor:
    """Inception-ResNet-V2 (Szegedy et al. 2016, TF-slim layout), input 299."""
    x = _conv(b, x, 32, 3, 2, "valid")
    x = _conv(b, x, 32, 3, 1, "valid")
    x = _conv(b, x, 64, 3)
    x = _maxpool(b, x)
    x = _conv(b, x, 80, 1, 1, "valid")
    x = _conv(b, x, 192, 3, 1, "valid")
    x = _maxpool(b, x)
    x = b.concat([
        _conv(b, x, 96, 1),
        _conv(b, _conv(b, x, 48, 1), 64, 5),
        _conv(b, _conv(b, _conv(b, x, 64, 1), 96, 3), 96, 3),
        _conv(b, _avgpool_same(b, x), 64, 1),
    ])  # fmt: skip
    for _ in range(10):  # block35
        t = b.concat([
            _conv(b, x, 32, 1),
            _conv(b, _conv(b, x, 32, 1), 32, 3),
            _conv(b, _conv(b, _conv(b, x, 32, 1), 48, 3), 64, 3),
        ])  # fmt: skip
        x = b.unary("RELU", b.add(x, _conv(b, t, x.shape[-1], 1, act="none")))
    x = b.concat([
        _conv(b, x, 384, 3, 2, "valid"),
        _conv(b, _conv(b, _conv(b, x, 256, 1), 256, 3), 384, 3, 2, "valid"),
        _maxpool(b, x),
    ])  # fmt: skip
    for _ in range(20):  # block17
        t = b.concat(
            [_conv(b, x, 192, 1), _conv(b, _conv(b, _conv(b, x, 128, 1), 160, (1, 7)), 192, (7, 1))]
        )
        x = b.unary("RELU", b.add(x, _conv(b, t, x.shape[-1], 1, act="none")))
    x = b.concat([
        _conv(b, _conv(b, x, 256, 1), 384, 3, 2, "valid"),
        _conv(b, _conv(b, x, 256, 1), 288, 3, 2, "valid"),
        _conv(b, _conv(b, _conv(b, x, 256, 1), 288, 3), 320, 3, 2, "valid"),
        _maxpool(b, x),
    ])  # fmt: skip
    for i in range(10):  # block8 (the last without its ReLU)
        t = b.concat(
            [_conv(b, x, 192, 1), _conv(b, _conv(b, _conv(b, x, 192, 1), 224, (1, 3)), 256, (3, 1))]
        )
        x = b.add(x, _conv(b, t, x.shape[-1], 1, act="none"))
        x = b.unary("RELU", x) if i < 9 else x
    x = _conv(b, x, 1536, 1)
    return _head(b, x)


def inception_v4(b: GraphBuilder, x: Tensor) -> Tensor:
    """Inception-v4 (Szegedy et al. 2016, TF-slim layout), input 299."""
    x = _conv(b, x, 32, 3, 2, "valid")
    x = _conv(b, x, 32, 3, 1, "valid")
    x = _conv(b, x, 64, 3)
    x = b.concat([_maxpool(b, x), _conv(b, x, 96, 3, 2, "valid")])
    x = b.concat([
        _conv(b, _conv(b, x, 64, 1), 96, 3, 1, "valid"),
        _conv(b, _conv(b, _conv(b, _conv(b, x, 64, 1), 64, (1, 7)), 64, (7, 1)), 96, 3, 1,
              "valid"),
    ])  # fmt: skip
    x = b.concat([_conv(b, x, 192, 3, 2, "valid"), _maxpool(b, x)])
    for _ in range(4):
        x = b.concat([
            _conv(b, _avgpool_same(b, x), 96, 1), _conv(b, x, 96, 1),
            _conv(b, _conv(b, x, 64, 1), 96, 3),
            _conv(b, _conv(b, _conv(b, x, 64, 1), 96, 3), 96, 3),
        ])  # fmt: skip
    x = b.concat([
        _conv(b, x, 384, 3, 2, "valid"),
        _conv(b, _conv(b, _conv(b, x, 192, 1), 224, 3), 256, 3, 2, "valid"),
        _maxpool(b, x),
    ])  # fmt: skip
    for _ in range(7):
        x = b.concat([
            _conv(b, _avgpool_same(b, x), 128, 1), _conv(b, x, 384, 1),
            _conv(b, _conv(b, _conv(b, x, 192, 1), 224, (1, 7)), 256, (7, 1)),
            _conv(b, _conv(b, _conv(b, _conv(b, _conv(b, x, 192, 1), 192, (1, 7)), 224, (7, 1)),
                           224, (1, 7)), 256, (7, 1)),
        ])  # fmt: skip
    x = b.concat([
        _conv(b, _conv(b, x, 192, 1), 192, 3, 2, "valid"),
        _conv(b, _conv(b, _conv(b, _conv(b, x, 256, 1), 256, (1, 7)), 320, (7, 1)), 320, 3, 2,
              "valid"),
        _maxpool(b, x),
    ])  # fmt: skip
    for _ in range(3):
        a = _conv(b, x, 384, 1)
        c = _conv(b, _conv(b, _conv(b, x, 384, 1), 448, (3, 1)), 512, (1, 3))
        x = b.concat([
            _conv(b, _avgpool_same(b, x), 256, 1), _conv(b, x, 256, 1),
            _conv(b, a, 256, (1, 3)), _conv(b, a, 256, (3, 1)),
            _conv(b, c, 256, (1, 3)), _conv(b, c, 256, (3, 1)),
        ])  # fmt: skip
    return _head(b, x)


#: EfficientNet-lite (width, depth, resolution): efficientnet_lite_builder.py
LITE = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260), 3: (1.2, 1.4, 280),
        4: (1.4, 1.8, 300)}  # fmt: skip
#: EfficientNet-B0 blocks: kernel, repeats, output channels, expansion, stride
_B0 = [(3, 1, 16, 1, 1), (3, 2, 24, 6, 2), (5, 2, 40, 6, 2), (3, 3, 80, 6, 2),
       (5, 3, 112, 6, 1), (5, 4, 192, 6, 2), (3, 1, 320, 6, 1)]  # fmt: skip


def _round_filters(c: float, width: float) -> int:
    c *= width
    new = max(8, int(c + 4) // 8 * 8)
    return int(new + 8) if new < 0.9 * c else int(new)


def efficientnet_lite(n: int) -> Callable[[GraphBuilder, Tensor], Tensor]:
    """EfficientNet-lite``n``: no squeeze-excite, ReLU6, stem (32) and head (1280) and the
    first and last stages' repeats not scaled."""
    width, depth, _ = LITE[n]

    def build(b: GraphBuilder, x: Tensor) -> Tensor:
        x = _conv(b, x, 32, 3, 2, act="relu6")
        for i, (k, reps, cout, expand, stride) in enumerate(_B0):
            cout = _round_filters(cout, width)
            if 0 < i < len(_B0) - 1:
                reps = math.ceil(depth * reps)
            for r in range(reps):
                cin = x.shape[-1]
                y = _conv(b, x, cin * expand, 1, act="relu6") if expand != 1 else x
                y = b.depthwise_conv2d(y, k, stride=stride if r == 0 else 1, activation="relu6")
                y = _conv(b, y, cout, 1, act="none")
                x = b.add(x, y) if r > 0 and cin == cout else y
        x = _conv(b, x, 1280, 1, act="relu6")
        return _head(b, x, 1000)

    return build


def build(name: str) -> bytes:
    """The .tflite bytes of an anchor network by name (see :data:`MODELS`)."""
    fn, size = MODELS[name]
    b = GraphBuilder(seed=0, description=f"tflat anchor {name}")
    x = b.input((1, size, size, 3))
    b.output(fn(b, x))
    return b.to_bytes()


MODELS: dict[str, tuple[Callable[[GraphBuilder, Tensor], Tensor], int]] = {
    "mobilenet_v1": (mobilenet_v1, 224),
    "inception_resnet_v2": (inception_resnet_v2, 299),
    "inception_v4": (inception_v4, 299),
    **{f"efficientnet_lite{n}": (efficientnet_lite(n), LITE[n][2]) for n in LITE},
}
