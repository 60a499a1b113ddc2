"""A dataset preprocessed once into a self-contained folder of slices (``mrsynth prepare``).

The folder has the slice cache's format (:mod:`mrsynth.data.cache`): ``meta.json`` and one
``.npy`` per array. Given as ``--data``, it stands in for the dataset on a machine that cannot see
the original images (a GPU node, a container): training, evaluation and experiments read the
slices as they are, after checking that they were made for the same task and preprocessing.
"""

from __future__ import annotations

import json
from pathlib import Path

from mrsynth.data.cache import CACHE_FORMAT_VERSION, META_FILE, PreparedDataset, load_cache_folder, write_cache_folder
from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.errors import DataError
from mrsynth.io.layouts import DatasetIndex


def write_prepared(index: DatasetIndex, inputs: tuple[str, ...], target: str, config: PreprocessConfig, out: Path,
                   progress: bool = True) -> PreparedDataset:
    """Preprocess ``index`` for ``inputs -> target`` into the new folder ``out`` (never overwritten)."""
    out = Path(out)
    if out.exists():
        raise DataError(f"{out} already exists; give a new folder for the prepared slices")
    write_cache_folder(index, tuple(inputs), target, config, progress, out)
    return load_cache_folder(out)


def load_prepared(folder: Path, inputs: tuple[str, ...], target: str, config: PreprocessConfig) -> PreparedDataset:
    """The slices of a prepared folder, after checking they were made for this task and preprocessing."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{folder / META_FILE}: not readable as a prepared slice folder ({exc})") from None
    if meta.get("version") != CACHE_FORMAT_VERSION:
        raise DataError(f"{folder} was prepared in format {meta.get('version')}, this mrsynth reads format "
                        f"{CACHE_FORMAT_VERSION}; run mrsynth prepare again on the original images")
    problems = []
    if meta.get("target") != target:
        problems.append(f"target {meta.get('target')} (this run: {target})")
    if tuple(meta.get("contrasts", ())) != tuple(inputs):
        problems.append(f"inputs {','.join(meta.get('contrasts', ()))} (this run: {','.join(inputs)})")
    wanted = json.loads(json.dumps(config.to_dict()))  # as meta.json holds it (lists, not tuples)
    prepared_config = meta.get("config", {})
    for key in sorted(set(wanted) | set(prepared_config)):
        if wanted.get(key) != prepared_config.get(key):
            problems.append(f"{key} {prepared_config.get(key)} (this run: {wanted.get(key)})")
    if problems:
        raise DataError(f"{folder} was prepared for another task or preprocessing: " + "; ".join(problems)
                        + ". Run mrsynth prepare with this run's settings")
    try:
        return load_cache_folder(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{folder}: prepared slices are damaged or incomplete ({exc})") from None
