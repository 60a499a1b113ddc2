"""Building the :class:`SliceSet` of a dataset, optionally cached on disk as memory-mapped .npy files.

The cache folder is keyed by a hash of everything the slices depend on (file paths, sizes and
modification times, inputs, target, preprocessing settings, cache format version); a second call
with the same key loads the arrays with ``np.load(mmap_mode="r")`` instead of recomputing. A cache
folder is written under a temporary name and renamed into place, so it is complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mrsynth.data.preprocessing import PreprocessConfig, SliceGeometry, prepare_subject
from mrsynth.data.slices import SliceSet
from mrsynth.errors import DataError, InputError
from mrsynth.io.layouts import PREPARED_MARKER, DatasetIndex, subject_exclusion
from mrsynth.io.subject import load_subject

logger = logging.getLogger(__name__)

#: Bump when the cache's content or layout changes; old cache folders are then ignored.
CACHE_FORMAT_VERSION = 2  # 2: crop from the inputs only, never the target
META_FILE = PREPARED_MARKER  # the same file marks a folder given to mrsynth prepare
_ARRAYS = ("inputs", "present", "target", "subject", "slice_index")


@dataclass
class SubjectInfo:
    """What evaluation needs to put a subject's slices back: its geometry, scales, reference."""

    geometry: SliceGeometry
    scales: dict[str, float]
    reference_contrast: str
    reference_path: str
    contrasts: tuple[str, ...]  # input contrasts present for this subject

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"geometry": self.geometry.to_dict(), "scales": self.scales, "reference_contrast": self.reference_contrast,
                "reference_path": self.reference_path, "contrasts": list(self.contrasts)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SubjectInfo":
        """Inverse of :meth:`to_dict`."""
        return cls(SliceGeometry.from_dict(data["geometry"]), {k: float(v) for k, v in data["scales"].items()},
                   data["reference_contrast"], data["reference_path"], tuple(data["contrasts"]))


@dataclass
class PreparedDataset:
    """A dataset's slice set plus what was left out, per-subject info and cache details."""

    slice_set: SliceSet
    left_out: list[tuple[str, str]]
    subjects: dict[str, SubjectInfo] = field(default_factory=dict)
    cache_path: Path | None = None
    cache_hit: bool = False


def check_task(inputs: tuple[str, ...], target: str) -> None:
    """A :class:`DataError` unless ``inputs -> target`` is a task: some inputs, the target not among them."""
    if not inputs:
        raise DataError("no input contrast given")
    if target in inputs:
        raise DataError(f"the target {target} is also listed as an input")


def cache_key(index: DatasetIndex, inputs: tuple[str, ...], target: str, config: PreprocessConfig) -> str:
    """Hash of everything the slice set depends on (files' paths, sizes, mtimes; task; settings)."""
    files = []
    for entry in index.subjects:
        for contrast in (*inputs, target):
            path = entry.files.get(contrast)
            if path is None:
                continue
            try:
                stat = Path(path).stat()
                files.append([entry.subject, contrast, str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
            except OSError:
                files.append([entry.subject, contrast, str(path), None, None])
    payload = {"version": CACHE_FORMAT_VERSION, "inputs": list(inputs), "target": target,
               "config": config.to_dict(), "files": files}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _subject_arrays(
    files: dict[str, Path], name: str, inputs: tuple[str, ...], target: str, config: PreprocessConfig
) -> tuple[dict[str, np.ndarray], SubjectInfo]:
    present = tuple(c for c in inputs if c in files)
    loaded = load_subject(files, (target, *present), reference=target, subject=name)
    prepared = prepare_subject(loaded.volumes, config, crop_from=present, target=target)
    n = len(prepared.geometry.slices)
    stack = np.zeros((n, len(inputs), *config.size), dtype=np.float32)
    mask = np.zeros((n, len(inputs)), dtype=bool)
    for c, contrast in enumerate(inputs):
        if contrast in prepared.slices:
            stack[:, c] = prepared.slices[contrast]
            mask[:, c] = True
    arrays = {"inputs": stack, "present": mask, "target": prepared.slices[target],
              "slice_index": np.arange(n, dtype=np.int64)}
    info = SubjectInfo(prepared.geometry, prepared.scales, target, str(files[target]), present)
    return arrays, info


def _iterate(
    index: DatasetIndex, inputs: tuple[str, ...], target: str, config: PreprocessConfig, progress: bool
):
    """Yield (name, arrays, info) per usable subject, or (name, None, reason) for a left-out one."""
    for entry in tqdm(index.subjects, desc="preprocessing", unit="subject", disable=not progress):
        reason = subject_exclusion(entry.files, inputs, target)
        if reason is not None:
            yield entry.subject, None, reason
            continue
        try:
            arrays, info = _subject_arrays(entry.files, entry.subject, inputs, target, config)
        except InputError as exc:
            logger.warning("subject %s left out: %s", entry.subject, exc)
            yield entry.subject, None, str(exc)
            continue
        yield entry.subject, arrays, info


def _no_subjects(left_out: list[tuple[str, str]], inputs: tuple[str, ...], target: str) -> DataError:
    detail = "; ".join(f"{n}: {r}" for n, r in left_out[:5])
    return DataError(f"no subject has {target} and at least one of {','.join(inputs)}" + (f" ({detail})" if detail else ""))


def _build_in_memory(index, inputs, target, config, progress) -> PreparedDataset:
    parts: dict[str, list[np.ndarray]] = {k: [] for k in _ARRAYS}
    names: list[str] = []
    infos: dict[str, SubjectInfo] = {}
    left_out: list[tuple[str, str]] = []
    for name, arrays, info in _iterate(index, inputs, target, config, progress):
        if arrays is None:
            left_out.append((name, info))
            continue
        for key, value in arrays.items():
            parts[key].append(value)
        parts["subject"].append(np.full(len(arrays["slice_index"]), len(names), dtype=np.int64))
        names.append(name)
        infos[name] = info
    if not names:
        raise _no_subjects(left_out, inputs, target)
    joined = {k: np.concatenate(v) for k, v in parts.items()}
    slice_set = SliceSet(subjects=tuple(names), contrasts=tuple(inputs), **joined)
    return PreparedDataset(slice_set, left_out, infos)


def write_cache_folder(index: DatasetIndex, inputs: tuple[str, ...], target: str, config: PreprocessConfig,
                       progress: bool, folder: Path) -> None:
    """Preprocess into a temporary folder next to ``folder`` and rename it into place (complete or absent)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    try:
        parts = tmp / "parts"
        parts.mkdir()
        names: list[str] = []
        infos: dict[str, dict[str, Any]] = {}
        left_out: list[tuple[str, str]] = []
        counts: list[int] = []
        for name, arrays, info in _iterate(index, inputs, target, config, progress):
            if arrays is None:
                left_out.append((name, info))
                continue
            for key, value in arrays.items():
                np.save(parts / f"{len(names)}_{key}.npy", value)
            counts.append(len(arrays["slice_index"]))
            infos[name] = info.to_dict()
            names.append(name)
        if not names:
            raise _no_subjects(left_out, inputs, target)
        _merge_parts(parts, counts, len(inputs), config.size, tmp)
        shutil.rmtree(parts)
        meta = {"version": CACHE_FORMAT_VERSION, "subjects": names, "contrasts": list(inputs), "target": target,
                "config": config.to_dict(), "left_out": left_out, "subject_info": infos,
                "dataset": {"root": str(index.root), "layout": index.layout}}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / META_FILE).is_file():  # not a concurrent writer that won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _merge_parts(parts: Path, counts: list[int], n_inputs: int, size: tuple[int, int], out: Path) -> None:
    """Concatenate per-subject .npy parts into one .npy per array, streaming through memmaps."""
    total = sum(counts)
    shapes = {"inputs": (total, n_inputs, *size), "present": (total, n_inputs), "target": (total, *size),
              "subject": (total,), "slice_index": (total,)}
    dtypes = {"inputs": np.float32, "present": np.bool_, "target": np.float32, "subject": np.int64,
              "slice_index": np.int64}
    for key in _ARRAYS:
        merged = np.lib.format.open_memmap(out / f"{key}.npy", mode="w+", dtype=dtypes[key], shape=shapes[key])
        start = 0
        for i, count in enumerate(counts):
            if key == "subject":
                merged[start:start + count] = i
            else:
                merged[start:start + count] = np.load(parts / f"{i}_{key}.npy")
            start += count
        merged.flush()
        del merged


def load_cache_folder(folder: Path) -> PreparedDataset:
    """The slice set of a folder written by :func:`write_cache_folder`, memory-mapped."""
    meta = json.loads((folder / META_FILE).read_text())
    arrays = {key: np.load(folder / f"{key}.npy", mmap_mode="r") for key in _ARRAYS}
    slice_set = SliceSet(subjects=tuple(meta["subjects"]), contrasts=tuple(meta["contrasts"]), **arrays)
    infos = {name: SubjectInfo.from_dict(d) for name, d in meta["subject_info"].items()}
    left_out = [(str(n), str(r)) for n, r in meta["left_out"]]
    return PreparedDataset(slice_set, left_out, infos, cache_path=folder, cache_hit=True)


def prepare_dataset(
    index: DatasetIndex,
    inputs: tuple[str, ...],
    target: str,
    config: PreprocessConfig,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> PreparedDataset:
    """Load and preprocess every usable subject of ``index`` for ``inputs -> target``.

    Subjects missing some inputs are kept (``present`` False, zeros); a subject without the
    target or without any input, or whose files are unusable, is left out with the reason.
    Each subject's slices are on its target's grid (the target is the reference contrast).
    With ``cache_dir`` the result is cached on disk and memory-mapped back.
    """
    inputs = tuple(inputs)
    check_task(inputs, target)
    if cache_dir is None:
        return _build_in_memory(index, inputs, target, config, progress)
    folder = Path(cache_dir) / f"slices-{cache_key(index, inputs, target, config)[:24]}"
    if (folder / META_FILE).is_file():
        try:
            return load_cache_folder(folder)
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("cache %s is damaged (%s); rebuilding it", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():  # incomplete leftover (no meta.json): start again
        shutil.rmtree(folder, ignore_errors=True)
    write_cache_folder(index, inputs, target, config, progress, folder)
    result = load_cache_folder(folder)
    result.cache_hit = False
    return result


def build_slice_set(
    index: DatasetIndex,
    inputs: tuple[str, ...],
    target: str,
    config: PreprocessConfig,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> tuple[SliceSet, list[tuple[str, str]]]:
    """The slice set of ``index`` for ``inputs -> target`` and the subjects left out (name, reason).

    See :func:`prepare_dataset`, which also returns per-subject geometries and cache details.
    """
    prepared = prepare_dataset(index, inputs, target, config, cache_dir=cache_dir, progress=progress)
    return prepared.slice_set, prepared.left_out
