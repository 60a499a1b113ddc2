"""Synthesise every subject of a dataset with one model."""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm.auto import tqdm

from mrsynth.errors import InputError
from mrsynth.inference.synthesizer import Synthesizer
from mrsynth.io.layouts import discover_dataset

log = logging.getLogger(__name__)


def synthesize_dataset(synthesizer: Synthesizer, data: str | Path, out_dir: str | Path, layout: str | None = None,
                       force: bool = False, rescale_mean: float | None = None) -> list[Path]:
    """Write ``<out_dir>/<subject>_<target>.nii.gz`` for every subject with at least one model input.

    Existing outputs are refused before anything is written, unless ``force``.
    """
    out_dir = Path(out_dir)
    index = discover_dataset(data, layout)
    jobs = []
    for entry in index.subjects:
        files = {c: p for c, p in entry.files.items() if c in synthesizer.inputs}
        if not files:
            log.warning("skipped subject %s: none of the model's inputs %s", entry.subject, ", ".join(synthesizer.inputs))
            continue
        jobs.append((entry.subject, files, out_dir / f"{entry.subject}_{synthesizer.target}.nii.gz"))
    if not force:
        for _, _, path in jobs:
            if path.exists():
                raise InputError("output file exists; use --force to overwrite", path=path)
    written = []
    for subject, files, path in tqdm(jobs, desc="synthesising", unit="subject"):
        result = synthesizer.synthesize_files(files, subject=subject)
        written.append(synthesizer.write(result, path, force=force, rescale_mean=rescale_mean))
    return written
