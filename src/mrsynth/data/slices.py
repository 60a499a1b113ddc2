"""The slice set: the one in-memory (or memory-mapped) form that training and evaluation read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class SliceSet:
    """Preprocessed 2D axial slices of many subjects, ready for the network.

    ``inputs[n, c]`` is slice ``n`` of input contrast ``contrasts[c]`` (zeros where the contrast is
    absent, which ``present[n, c]`` records); ``target[n]`` is the same slice of the target
    contrast; ``subject[n]`` indexes ``subjects``; ``slice_index[n]`` is the slice's position in
    its subject's preprocessed stack. Arrays may be ``np.memmap`` views of the on-disk cache.
    """

    inputs: np.ndarray  # (N, C, H, W) float32
    present: np.ndarray  # (N, C) bool
    target: np.ndarray  # (N, H, W) float32
    subject: np.ndarray  # (N,) int64
    slice_index: np.ndarray  # (N,) int64
    subjects: tuple[str, ...]
    contrasts: tuple[str, ...]

    def __post_init__(self) -> None:
        n, c = self.inputs.shape[:2]
        if self.present.shape != (n, c) or self.target.shape[0] != n or self.subject.shape != (n,):
            raise ValueError("SliceSet arrays disagree in their number of slices or contrasts")
        if len(self.contrasts) != c:
            raise ValueError(f"SliceSet has {c} input channels but {len(self.contrasts)} contrast names")

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.inputs.shape[2]), int(self.inputs.shape[3])

    def select_subjects(self, names: list[str] | tuple[str, ...]) -> "SliceSet":
        """Return the slices of the named subjects only (a copy, subjects re-indexed)."""
        wanted = [self.subjects.index(name) for name in names]
        rows = np.flatnonzero(np.isin(self.subject, wanted))
        remap = {old: new for new, old in enumerate(wanted)}
        return SliceSet(
            inputs=np.asarray(self.inputs[rows]),
            present=np.asarray(self.present[rows]),
            target=np.asarray(self.target[rows]),
            subject=np.array([remap[int(s)] for s in self.subject[rows]], dtype=np.int64),
            slice_index=np.asarray(self.slice_index[rows]),
            subjects=tuple(names),
            contrasts=self.contrasts,
        )

    def select_contrasts(self, names: tuple[str, ...]) -> "SliceSet":
        """Keep only the named input contrasts, in the given order; drops slices left with none."""
        cols = [self.contrasts.index(name) for name in names]
        present = np.asarray(self.present[:, cols])
        rows = np.flatnonzero(present.any(axis=1))
        return SliceSet(
            inputs=np.asarray(self.inputs[rows][:, cols]),
            present=present[rows],
            target=np.asarray(self.target[rows]),
            subject=np.asarray(self.subject[rows]),
            slice_index=np.asarray(self.slice_index[rows]),
            subjects=self.subjects,
            contrasts=tuple(names),
        )


def concatenate(sets: Sequence[SliceSet]) -> SliceSet:
    """The slices of every set, one after the other (copied into memory), subjects renumbered.

    The sets must have the same contrasts in the same order and the same image size; a subject
    name may appear in one set only. Raises :class:`ValueError` otherwise.
    """
    if not sets:
        raise ValueError("nothing to concatenate")
    first = sets[0]
    for other in sets[1:]:
        if other.contrasts != first.contrasts:
            raise ValueError(f"slice sets differ in their contrasts: {', '.join(first.contrasts)} against {', '.join(other.contrasts)}")
        if other.image_size != first.image_size:
            raise ValueError(f"slice sets differ in their image size: {first.image_size} against {other.image_size}")
    names = [name for s in sets for name in s.subjects]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"subject(s) {', '.join(repeated)} appear in more than one slice set")
    offsets = np.cumsum([0] + [len(s.subjects) for s in sets[:-1]])
    return SliceSet(
        inputs=np.concatenate([np.asarray(s.inputs) for s in sets]),
        present=np.concatenate([np.asarray(s.present) for s in sets]),
        target=np.concatenate([np.asarray(s.target) for s in sets]),
        subject=np.concatenate([np.asarray(s.subject) + offset for s, offset in zip(sets, offsets)]),
        slice_index=np.concatenate([np.asarray(s.slice_index) for s in sets]),
        subjects=tuple(names),
        contrasts=first.contrasts,
    )
