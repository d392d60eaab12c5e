"""The trained range of each learned kind's size features, computed from its training rows.

:func:`training_range` is the bundle's ``training_range`` section; :mod:`tflat.pricing.ranges`
reads it and says when a kernel lies outside (an ``extrapolated`` price).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: The features whose range is checked: the kernel's size, not derived quantities.
RANGE_FEATURES = (
    "log2_pixels_out",
    "log2_cin",
    "log2_cout",
    "kernel",
    "stride",
    "log2_groups",
    "log2_flops_eff",
    "log2_weight_bytes",
    "n_inputs",
)
#: How far past the trained range (log2 units) a size feature may go before it counts as
#: extrapolated: 0.5 is a factor 1.41 (a 1088-channel output next to 1024 trained is not a
#: new regime); counts (kernel, stride, inputs) must be inside exactly.
LOG2_MARGIN = 0.5


def compute_ranges(x: np.ndarray, kinds: Sequence[str], names: Sequence[str]) -> dict[str, Any]:
    """``{kind: {feature: [min, max]}}`` of the training rows ``x`` (columns ``names``)."""
    col = {n: i for i, n in enumerate(names)}
    kind_arr = np.asarray(kinds)
    out: dict[str, Any] = {}
    for kind in sorted(set(kind_arr.tolist())):
        rows = x[kind_arr == kind]
        out[kind] = {
            f: [float(rows[:, col[f]].min()), float(rows[:, col[f]].max())]
            for f in RANGE_FEATURES
            if f in col
        }
    return out


def training_range(
    shapes: Sequence[Any], kinds: Sequence[str], analytic: Mapping[str, Any]
) -> dict[str, Any]:
    """A bundle's ``training_range`` section from the training rows' kernel shapes (as the
    regressors saw them: proxied kinds already replaced), the regressors' kinds and their
    analytic coefficients."""
    from tflat.predict.features import FEATURE_NAMES, analytic_ms, feature_matrix

    x = feature_matrix(shapes, kinds, analytic_ms(analytic, shapes))
    return {
        "features": list(RANGE_FEATURES),
        "log2_margin": LOG2_MARGIN,
        "kinds": compute_ranges(x, [s.kind for s in shapes], FEATURE_NAMES),
    }
