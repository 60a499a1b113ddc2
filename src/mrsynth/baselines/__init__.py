"""Comparison methods of the paper's Tables 1 and 2: voxel-wise linear regression (the floor),
the random forest of Jog et al. ("RF") and the DEDIS encoder-decoder, behind one small protocol."""

from __future__ import annotations

from mrsynth.baselines.base import Baseline
from mrsynth.baselines.context_features import ContextConfig
from mrsynth.baselines.dedis import DedisBaseline, DedisConfig
from mrsynth.baselines.forest import ForestBaseline, ForestConfig
from mrsynth.baselines.linear import LinearBaseline

BASELINE_NAMES: tuple[str, ...] = ("linear", "rf", "dedis")


def make_baseline(name: str, config: ForestConfig | DedisConfig | None = None) -> Baseline:
    """A fresh, unfitted baseline by name (``linear``, ``rf`` or ``dedis``), with an optional config."""
    if name == "linear":
        if config is not None:
            raise ValueError("the linear baseline takes no config")
        return LinearBaseline()
    if name == "rf":
        if config is not None and not isinstance(config, ForestConfig):
            raise ValueError("the rf baseline takes a ForestConfig")
        return ForestBaseline(config)
    if name == "dedis":
        if config is not None and not isinstance(config, DedisConfig):
            raise ValueError("the dedis baseline takes a DedisConfig")
        return DedisBaseline(config)
    raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINE_NAMES)}")


__all__ = [
    "BASELINE_NAMES",
    "Baseline",
    "ContextConfig",
    "DedisBaseline",
    "DedisConfig",
    "ForestBaseline",
    "ForestConfig",
    "LinearBaseline",
    "make_baseline",
]
