"""Mean calibration: give a synthesised volume the brain mean that its inputs have.

The preprocessing divides every volume of a subject, the target included, by its own brain mean,
and the contrasts of a co-registered subject share one brain. So, in the working space, the
target's mean over the brain equals each input's mean over it, up to small differences of the
contrasts' masks. A network's output on an unseen subject misses that mean by 3-20 %
(``docs/experiments/mean_calibration/``); this step rescales the output so that its mean over the
voxels where every present input has signal equals the inputs' mean there. It needs inputs and
target scaled the same way (brain mean), and changes nothing else about the prediction.
"""

from __future__ import annotations

import numpy as np


def calibration_factor(prediction: np.ndarray, inputs: np.ndarray, present: np.ndarray) -> float:
    """The factor that gives ``prediction`` its inputs' mean over their common brain voxels.

    ``prediction`` is one subject's synthesised stack ``(S, H, W)``, ``inputs`` its input stack
    ``(S, C, H, W)`` and ``present`` a ``(C,)`` mask of the inputs used. The voxels counted are those
    where every present input is positive; 1.0 when there are none, or the prediction is 0 there.
    """
    present = np.asarray(present, dtype=bool)
    if present.ndim != 1 or inputs.ndim != 4 or inputs.shape[1] != present.shape[0] or inputs.shape[0] != prediction.shape[0]:
        raise ValueError(f"inputs {inputs.shape} (S, C, H, W), present {present.shape} (C,) and prediction "
                         f"{prediction.shape} (S, H, W) do not fit together")
    used = inputs[:, present]
    common = (used > 0).all(axis=1)
    if not common.any():
        return 1.0
    predicted = float(np.mean(prediction[common], dtype=np.float64))
    if predicted <= 0.0:
        return 1.0
    expected = float(np.mean([np.mean(used[:, c][common], dtype=np.float64) for c in range(used.shape[1])]))
    return expected / predicted


def calibrate_mean(prediction: np.ndarray, inputs: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``prediction`` times :func:`calibration_factor` (a new array, same dtype)."""
    factor = calibration_factor(prediction, inputs, present)
    return (prediction * np.asarray(factor, dtype=prediction.dtype)).astype(prediction.dtype, copy=False)
