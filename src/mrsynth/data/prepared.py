"""A dataset preprocessed once into a self-contained folder of slices (``mrsynth prepare``).

The folder has the slice cache's format (:mod:`mrsynth.data.cache`): ``meta.json`` and one
``.npy`` per array. Given as ``--data``, it stands in for the dataset on a machine that cannot see
the original images (a GPU node, a container): training, evaluation and experiments read the
slices as they are, after checking that they were made for the same task and preprocessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mrsynth.data.cache import (CACHE_FORMAT_VERSION, META_FILE, PreparedDataset, check_task, load_cache_folder,
                                write_cache_folder)
from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.errors import DataError, PreparedMismatchError
from mrsynth.io.layouts import DatasetIndex


def write_prepared(index: DatasetIndex, inputs: tuple[str, ...], target: str, config: PreprocessConfig, out: Path,
                   progress: bool = True) -> PreparedDataset:
    """Preprocess ``index`` for ``inputs -> target`` into the new folder ``out`` (never overwritten)."""
    inputs, out = tuple(inputs), Path(out).expanduser()
    check_task(inputs, target)
    if out.exists():
        raise DataError(f"{out} already exists; give a new folder for the prepared slices")
    write_cache_folder(index, inputs, target, config, progress, out)
    return load_cache_folder(out)


def differences(meta: dict[str, Any], inputs: tuple[str, ...], target: str, config: PreprocessConfig) -> list[str]:
    """What a prepared folder's ``meta`` was made for that differs from this task, one item per setting."""
    found = []
    if meta.get("target") != target:
        found.append(f"target {meta.get('target')} (this run: {target})")
    if tuple(meta.get("contrasts", ())) != tuple(inputs):
        found.append(f"inputs {','.join(meta.get('contrasts', ()))} (this run: {','.join(inputs)})")
    wanted = json.loads(json.dumps(config.to_dict()))  # as meta.json holds it (lists, not tuples)
    prepared = meta.get("config", {})
    for key in sorted(set(wanted) | set(prepared)):
        if wanted.get(key) != prepared.get(key):
            found.append(f"{key} {prepared.get(key)} (this run: {wanted.get(key)})")
    return found


def load_prepared(folder: Path, inputs: tuple[str, ...], target: str, config: PreprocessConfig) -> PreparedDataset:
    """The slices of a prepared folder, after checking they were made for this task and preprocessing.

    Raises :class:`PreparedMismatchError` naming each difference, :class:`DataError` for a damaged folder.
    """
    folder = Path(folder).expanduser()
    check_task(tuple(inputs), target)
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{folder / META_FILE}: not readable as a prepared slice folder ({exc})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{folder / META_FILE}: not a prepared slice folder's description (a JSON object)")
    if meta.get("version") != CACHE_FORMAT_VERSION:
        raise DataError(f"{folder} was prepared in format {meta.get('version')}, this mrsynth reads format "
                        f"{CACHE_FORMAT_VERSION}; run mrsynth prepare again on the original images")
    found = differences(meta, tuple(inputs), target, config)
    if found:
        raise PreparedMismatchError(f"{folder} was prepared for another task or preprocessing: " + "; ".join(found)
                                    + ". Run mrsynth prepare with this run's settings")
    try:
        return load_cache_folder(folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{folder}: prepared slices are damaged or incomplete ({exc})") from None
