"""Loading one subject's contrasts onto one reference grid, in RAS voxel order for axial slicing."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrsynth.errors import InputError
from mrsynth.io.resample import Reorientation, reorient_to_ras, resample_to, same_grid, undo_reorientation
from mrsynth.io.volumes import Volume, load_volume

logger = logging.getLogger(__name__)


@dataclass
class SubjectVolumes:
    """A subject's contrasts on one grid: the reference's grid, reoriented to RAS (axis 2 axial).

    ``reference`` is the reference volume exactly as loaded (original voxel order and affine),
    for writing outputs; ``reorientation`` undoes the RAS reorientation (see :func:`to_reference_grid`).
    """

    subject: str
    volumes: dict[str, np.ndarray]
    reference: Volume
    reference_contrast: str
    reorientation: Reorientation
    affine: np.ndarray  # voxel -> RAS mm affine of the working (reoriented) grid

    @property
    def shape(self) -> tuple[int, int, int]:
        """Working-grid shape (x, y, z)."""
        return self.reorientation.ras_shape


def _clip_negative(volume: Volume) -> Volume:
    negative = int((volume.data < 0).sum())
    if negative:
        logger.info("%s (%s): %d negative voxels clipped to 0", volume.path, volume.contrast, negative)
        np.maximum(volume.data, 0, out=volume.data)
    if not (volume.data > 0).any():
        raise InputError("has no brain voxels (no value above zero)", path=volume.path, contrast=volume.contrast)
    return volume


def _load_all(files: Mapping[str, str | Path], workers: int) -> list[Volume]:
    """Load the files in up to ``workers`` threads (decompression and checks release the GIL); errors in file order."""
    if len(files) == 1 or workers <= 1:
        return [load_volume(path, contrast) for contrast, path in files.items()]
    with ThreadPoolExecutor(max_workers=min(len(files), workers), thread_name_prefix="mrsynth-load") as pool:
        return list(pool.map(lambda item: load_volume(item[1], item[0]), files.items()))


def load_subject(
    files: Mapping[str, str | Path],
    contrasts: Sequence[str],
    reference: str | None = None,
    subject: str = "subject",
    workers: int = 4,
) -> SubjectVolumes:
    """Load the ``contrasts`` present in ``files`` onto one reference grid, reoriented to RAS.

    The reference is ``reference`` if given (it must be in ``files``), else the first of
    ``contrasts`` present. Other contrasts are resampled (linear) onto its grid when their grid
    differs. Negative values are clipped at 0 (logged at INFO). Raises :class:`InputError` for
    unusable files, an empty brain, no overlap with the reference, or no requested contrast.
    The files are read by up to ``workers`` threads at once (1: one after another).
    """
    wanted = list(dict.fromkeys(c for c in contrasts if c in files))
    if reference is None:
        if not wanted:
            raise InputError(f"subject {subject} has none of the contrasts {', '.join(contrasts)}")
        reference = wanted[0]
    elif reference not in files:
        raise InputError(f"subject {subject} has no file for the reference contrast", contrast=reference)
    order = list(dict.fromkeys([reference, *wanted]))  # the reference first, each contrast once
    loaded = dict(zip(order, _load_all({c: files[c] for c in order}, workers)))
    ref_original = loaded.pop(reference)
    ref_work = _clip_negative(Volume(ref_original.data.copy(), ref_original.affine, ref_original.path, reference))
    ref_ras, reorientation = reorient_to_ras(ref_work)
    volumes: dict[str, np.ndarray] = {}
    for contrast in wanted:
        if contrast == reference:
            volumes[contrast] = ref_ras.data
            continue
        volume = _clip_negative(loaded.pop(contrast))
        if not same_grid(volume, ref_work):
            volume = resample_to(volume, ref_work, order=1)
            if not (volume.data > 0).any():
                raise InputError(f"has no brain voxels inside the {reference} grid", path=volume.path,
                                 contrast=contrast)
        volumes[contrast] = reorient_to_ras(volume)[0].data
    return SubjectVolumes(
        subject=subject,
        volumes=volumes,
        reference=ref_original,
        reference_contrast=reference,
        reorientation=reorientation,
        affine=ref_ras.affine,
    )


def to_reference_grid(array: np.ndarray, subject_volumes: SubjectVolumes) -> np.ndarray:
    """Put an array on the working (RAS) grid back into the reference's original voxel order.

    The result pairs with ``subject_volumes.reference.affine`` for saving.
    """
    return undo_reorientation(np.asarray(array), subject_volumes.reorientation)
