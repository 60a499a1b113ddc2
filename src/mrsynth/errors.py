"""Errors that mrsynth reports to users as one clear line (exit code 2), never a traceback."""

from __future__ import annotations

from pathlib import Path


class MrsynthError(Exception):
    """Base class of every error that is the user's input, not a bug in mrsynth."""


class InputError(MrsynthError):
    """A problem with one input file or contrast: says which file, which contrast, what is wrong."""

    def __init__(self, problem: str, *, path: str | Path | None = None, contrast: str | None = None):
        self.problem = problem
        self.path = None if path is None else Path(path)
        self.contrast = contrast
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if contrast is not None:
            where.append(f"contrast {contrast}")
        prefix = f"{' ('.join(where)}{')' if len(where) > 1 else ''}: " if where else ""
        super().__init__(prefix + problem)


class CheckpointError(MrsynthError):
    """A checkpoint that is missing, unreadable or incompatible with this version."""


class DataError(MrsynthError):
    """A dataset that cannot be used as asked (no subjects, no target, unknown layout)."""


class PreparedMismatchError(DataError):
    """A folder of prepared slices (``mrsynth prepare``) was made for another task or preprocessing."""
