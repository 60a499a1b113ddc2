"""Random-forest regression baseline ("RF" in the paper), after Jog et al. 2017.

Each voxel is described by 3x3x3 patches and multi-scale context boxes of every input (see
``context_features``), and a forest regresses the target intensity from them. Training voxels
are sampled within the brain (target or any input non-zero) of the training slices whose inputs
are all present. One forest serves one input subset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

from mrsynth.baselines.base import (
    brain_mask,
    check_stack,
    finish_prediction,
    foreground,
    load_stack,
    require_fitted,
    subject_runs,
)
from mrsynth.baselines.context_features import ContextConfig, extract_features, iter_slabs, z_margin
from mrsynth.data.slices import SliceSet


@dataclass(frozen=True)
class ForestConfig:
    """Forest and sampling settings; ``kind`` picks a random forest or extremely randomised trees.

    ``max_features`` defaults to all features (scikit-learn's regression default): with only the
    few centre-voxel features strongly informative, Breiman's p/3 was ~10x worse on the synthetic
    test problem; lower it to trade accuracy for training time.
    """

    n_estimators: int = 60
    max_depth: int | None = 20
    min_samples_leaf: int = 5
    max_features: float | str | None = 1.0
    samples_per_subject: int = 20000
    kind: Literal["random_forest", "extra_trees"] = "random_forest"
    seed: int = 0
    n_jobs: int | None = 1
    context: ContextConfig = field(default_factory=ContextConfig)
    slab_slices: int = 16  # slices whose features are held in memory at once when predicting


class ForestBaseline:
    """Patch + context features -> random forest -> target intensity, voxel by voxel."""

    def __init__(self, config: ForestConfig | None = None) -> None:
        self.config = config or ForestConfig()
        self.name = "rf" if self.config.kind == "random_forest" else "extra-trees"
        self.inputs: tuple[str, ...] = ()
        self.forest: RandomForestRegressor | ExtraTreesRegressor | None = None
        self.n_training_voxels = 0

    def _sample(self, train: SliceSet, inputs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Features and targets of up to ``samples_per_subject`` brain voxels per subject."""
        rng = np.random.default_rng(self.config.seed)
        runs_by_subject: dict[int, list[np.ndarray]] = {}
        for subject, rows in subject_runs(train, inputs):
            runs_by_subject.setdefault(subject, []).append(rows)
        features, targets = [], []
        for subject in sorted(runs_by_subject):
            loaded = [load_stack(train, rows, inputs) for rows in runs_by_subject[subject]]
            candidates = [np.flatnonzero(brain_mask(stack, target)) for stack, target in loaded]
            total = sum(c.size for c in candidates)
            if total == 0:
                continue
            pick = np.sort(rng.choice(total, size=min(total, self.config.samples_per_subject), replace=False))
            start = 0
            for (stack, target), cand in zip(loaded, candidates):
                chosen = cand[pick[(pick >= start) & (pick < start + cand.size)] - start]
                start += cand.size
                if chosen.size:
                    features.append(extract_features(stack, chosen, self.config.context))
                    targets.append(target.reshape(-1)[chosen])
        if not features:
            raise ValueError("the training slices hold no brain voxels to learn from")
        return np.concatenate(features), np.concatenate(targets)

    def fit(self, train: SliceSet, inputs: tuple[str, ...]) -> "ForestBaseline":
        """Sample brain voxels of the slices with all ``inputs`` present and grow the forest."""
        inputs = tuple(inputs)
        x, y = self._sample(train, inputs)
        cfg = self.config
        model_cls = RandomForestRegressor if cfg.kind == "random_forest" else ExtraTreesRegressor
        forest = model_cls(
            n_estimators=cfg.n_estimators,
            max_depth=cfg.max_depth,
            min_samples_leaf=cfg.min_samples_leaf,
            max_features=cfg.max_features,
            random_state=cfg.seed,
            n_jobs=cfg.n_jobs,
        )
        forest.fit(x, y)
        self.forest, self.inputs, self.n_training_voxels = forest, inputs, int(y.size)
        return self

    def predict_volume(self, stack: np.ndarray) -> np.ndarray:
        """Predict every foreground voxel of an ``(S, C, H, W)`` stack, a slab of slices at a time."""
        inputs = require_fitted(self.inputs, self.name)
        assert self.forest is not None
        stack = check_stack(stack, len(inputs))
        n_slices, _, height, width = stack.shape
        pred = np.zeros((n_slices, height, width), dtype=np.float32)
        fg = foreground(stack)
        margin = z_margin(self.config.context)
        for lo, hi, z0, z1 in iter_slabs(n_slices, self.config.slab_slices, margin):
            local = np.zeros((hi - lo, height, width), dtype=bool)
            local[z0 - lo : z1 - lo] = fg[z0:z1]
            index = np.flatnonzero(local)
            if index.size:
                values = self.forest.predict(extract_features(stack[lo:hi], index, self.config.context))
                zz, yy, xx = np.unravel_index(index, local.shape)
                pred[lo + zz, yy, xx] = values
        return finish_prediction(pred, stack)
