"""Cross-validation folds that keep each architecture family whole (never in train and test)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def group_folds(
    groups: Sequence[str], n_folds: int, tags: Sequence[str] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds with whole families, balanced by row count (deterministic).

    With ``tags`` (one per row, e.g. the kernel kind), a family holding a rare tag (one that
    at most ``n_folds`` families have) is put in a fold without that tag when there is one:
    otherwise every family with grouped convolutions (RegNet, ResNeXt) may land in one fold,
    and that fold's model has never seen the kind it must predict.
    """
    g = np.asarray(groups)
    counts: dict[str, int] = defaultdict(int)
    for x in g:
        counts[str(x)] += 1
    fam_tags: dict[str, set[str]] = defaultdict(set)
    if tags is not None:
        for x, t in zip(g, tags, strict=True):
            fam_tags[str(x)].add(str(t))
    k = max(2, min(n_folds, len(counts)))
    tag_families: dict[str, int] = defaultdict(int)
    for ts in fam_tags.values():
        for t in ts:
            tag_families[t] += 1
    rare = {t for t, n in tag_families.items() if 1 < n <= k}
    order = sorted(counts, key=lambda f: (-len(fam_tags[f] & rare), -counts[f], f))
    load = [0] * k
    fold_tags: list[set[str]] = [set() for _ in range(k)]
    fold_of: dict[str, int] = {}
    for fam in order:
        mine = fam_tags[fam] & rare
        free = [i for i in range(k) if not (fold_tags[i] & mine)] or list(range(k))
        i = min(free, key=lambda j: (load[j], j))
        fold_of[fam] = i
        load[i] += counts[fam]
        fold_tags[i] |= mine
    folds = np.array([fold_of[str(x)] for x in g])
    return [(np.where(folds != i)[0], np.where(folds == i)[0]) for i in range(k)]
