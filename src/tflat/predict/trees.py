"""Gradient-boosted trees as plain arrays: trained with LightGBM, evaluated with numpy.

Bundles must survive library upgrades and load fast without LightGBM, so trees are stored as
flat lists (split feature, threshold, children, leaf value) converted from LightGBM's public
``dump_model()`` JSON, never as a pickle or a LightGBM model string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflat.errors import PredictorError


@dataclass(frozen=True)
class TreeEnsemble:
    """Sum of regression trees. Node arrays are concatenated over trees; a leaf has feature -1.

    Decisions are ``x[feature] <= threshold`` -> left, as in LightGBM's numerical splits.
    """

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    max_depth: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Sum of the trees for every row of ``x``: all rows descend all trees at once, one
        level per step (a leaf points to itself, so finished paths stay put)."""
        x = np.asarray(x, dtype=float)
        n = x.shape[0]
        if n == 0 or self.roots.size == 0:
            return np.zeros(n)
        # Real graphs repeat their blocks: every distinct row goes down the trees once.
        x, inverse = np.unique(x, axis=0, return_inverse=True)
        n = x.shape[0]
        # (rows, trees) node ids; features read through a flat index into x.
        node = np.broadcast_to(self.roots, (n, self.roots.size)).copy()
        row_base = (np.arange(n) * x.shape[1])[:, None]
        flat_x = x.ravel()
        feature = np.maximum(self.feature, 0)
        for _ in range(self.max_depth):
            go_left = flat_x[row_base + feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return np.asarray(self.value[node].sum(axis=1))[inverse.reshape(-1)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "roots": self.roots.tolist(),
            "feature": self.feature.tolist(),
            "threshold": [float(t) for t in self.threshold],
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "value": [float(v) for v in self.value],
            "max_depth": self.max_depth,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TreeEnsemble:
        try:
            return cls(
                roots=np.asarray(data["roots"], dtype=np.int64),
                feature=np.asarray(data["feature"], dtype=np.int64),
                threshold=np.asarray(data["threshold"], dtype=float),
                left=np.asarray(data["left"], dtype=np.int64),
                right=np.asarray(data["right"], dtype=np.int64),
                value=np.asarray(data["value"], dtype=float),
                max_depth=int(data["max_depth"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PredictorError(f"predictor trees are malformed: {exc!r}") from exc


def check_tree_arrays(
    roots: Sequence[int],
    feature: Sequence[int],
    left: Sequence[int],
    right: Sequence[int],
    max_depth: int,
) -> None:
    """Refuse (ValueError) node arrays that are not ``len(roots)`` trees stored one after
    another as :func:`from_lightgbm_dump` writes them: each node in one tree, every child after
    its parent and inside its tree (so no cycle), one parent each, no deeper than
    ``max_depth``, a leaf (feature -1) pointing to itself. ``predict`` walks ``max_depth``
    steps and trusts all of this; a bundle from outside is checked first."""
    n = len(feature)
    r, f = np.asarray(roots, dtype=np.int64), np.asarray(feature, dtype=np.int64)
    lo, hi = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    if r.size == 0:
        if n:
            raise ValueError("nodes but no roots")
        return
    if r[0] != 0 or np.any(np.diff(r) <= 0) or r[-1] >= n:
        raise ValueError("roots: must start at 0 and increase inside the node arrays")
    idx = np.arange(n)
    end = np.repeat(np.append(r[1:], n), np.diff(np.append(r, n)))  # where each node's tree ends
    leaf = f < 0
    loose = leaf & ((lo != idx) | (hi != idx))
    if np.any(loose):
        raise ValueError(f"leaf {int(idx[loose][0])} does not point to itself")
    inner = ~leaf
    for name, child in (("left", lo), ("right", hi)):
        bad = inner & ((child <= idx) | (child >= end))
        if np.any(bad):
            node = int(idx[bad][0])
            raise ValueError(
                f"{name}[{node}]: child {int(child[node])} is not after its parent in its tree"
            )
    parents = np.bincount(np.concatenate([lo[inner], hi[inner]]), minlength=n)
    want = np.ones(n, dtype=np.int64)
    want[r] = 0
    wrong = (parents != want).nonzero()[0]
    if wrong.size:
        node = int(wrong[0])
        raise ValueError(f"node {node} has {int(parents[node])} parents, not {want[node]}")
    frontier, depth = r, 0
    while True:
        inner_front = frontier[f[frontier] >= 0]
        if inner_front.size == 0:
            return
        depth += 1
        if depth > max_depth:
            raise ValueError(f"a tree is deeper than its max_depth {max_depth}")
        frontier = np.concatenate([lo[inner_front], hi[inner_front]])


def from_lightgbm_dump(dump: Mapping[str, Any]) -> TreeEnsemble:
    """Convert ``Booster.dump_model()`` (numerical splits only) to a :class:`TreeEnsemble`."""
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []
    roots: list[int] = []
    max_depth = 0

    def add(node: Mapping[str, Any], depth: int) -> int:
        nonlocal max_depth
        max_depth = max(max_depth, depth)
        pos = len(feature)
        feature.append(-1)
        threshold.append(0.0)
        left.append(pos)
        right.append(pos)
        value.append(0.0)
        if "leaf_value" in node or "split_feature" not in node:
            value[pos] = float(node.get("leaf_value", 0.0))
            return pos
        if node.get("decision_type", "<=") != "<=":
            raise PredictorError("only numerical '<=' splits can be exported")
        feature[pos] = int(node["split_feature"])
        threshold[pos] = float(node["threshold"])
        left[pos] = add(node["left_child"], depth + 1)
        right[pos] = add(node["right_child"], depth + 1)
        return pos

    for tree in dump["tree_info"]:
        roots.append(add(tree["tree_structure"], 0))
    return TreeEnsemble(
        roots=np.asarray(roots, dtype=np.int64),
        feature=np.asarray(feature, dtype=np.int64),
        threshold=np.asarray(threshold, dtype=float),
        left=np.asarray(left, dtype=np.int64),
        right=np.asarray(right, dtype=np.int64),
        value=np.asarray(value, dtype=float),
        max_depth=max_depth,
    )


def fit_gbdt(x: np.ndarray, y: np.ndarray, params: Mapping[str, Any]) -> TreeEnsemble:
    """Train LightGBM (least squares unless ``params`` name another objective) and export it.
    LightGBM is needed only here."""
    return from_lightgbm_dump(train_booster(x, y, params).dump_model())


def train_booster(x: np.ndarray, y: np.ndarray, params: Mapping[str, Any]) -> Any:
    """The LightGBM booster itself: out-of-fold predictions that are never saved use its own
    ``predict`` (the same sums as the export, see tests) and skip the JSON round trip."""
    try:
        import lightgbm as lgb
    except ImportError as exc:  # pragma: no cover - lightgbm is a training dependency
        raise PredictorError("training needs lightgbm: pip install 'lightgbm>=4,<5'") from exc
    p = dict(params)
    rounds = int(p.pop("n_estimators", 300))
    base = {
        "objective": "regression",
        "verbosity": -1,
        "num_threads": 1,
        "deterministic": True,
        "seed": 7,
    }
    base.update(p)
    return lgb.train(base, lgb.Dataset(x, label=y), num_boost_round=rounds)
