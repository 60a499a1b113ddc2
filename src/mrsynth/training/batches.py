"""Batches read from a SliceSet with vectorised indexing: no per-slice Python in the hot loop."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mrsynth.data.slices import SliceSet


@dataclass
class Batch:
    """One batch on the device; with several ranks, one rank's share of a global batch.

    ``weight`` multiplies this share's mean loss so that averaging the ranks' gradients gives
    the global batch's mean (``len * world / global_len``); ``samples`` counts its real slices
    (0 for the placeholder row a rank runs, with weight 0, when a small last batch leaves it none).
    ``clean_images`` are the inputs before intensity augmentation (None: ``images`` are), the
    targets of a cross-synthesis model's input decoders; ``available`` marks the inputs each sample
    has before input dropout hid some (None: ``present``), all of which those decoders synthesise.
    """

    images: torch.Tensor  # (B, C, H, W) or (B, C, K, H, W)
    present: torch.Tensor  # (B, C) bool
    target: torch.Tensor  # (B, 1, H, W)
    weight: float = 1.0
    samples: int | None = None
    clean_images: torch.Tensor | None = None
    available: torch.Tensor | None = None  # (B, C) bool

    def __post_init__(self) -> None:
        if self.samples is None:
            self.samples = len(self.target)

    @property
    def input_targets(self) -> torch.Tensor:
        """What the input decoders are to synthesise: the inputs without intensity augmentation."""
        return self.images if self.clean_images is None else self.clean_images


def context_rows(slices: SliceSet, context: int) -> np.ndarray:
    """For every row, the rows of its ``2*context+1`` neighbouring slices in the same subject.

    A subject's slices are consecutive rows in slice order (as the cache writes them);
    neighbours beyond its first or last slice repeat that edge slice, exactly as
    :class:`~mrsynth.inference.Synthesizer` pads a stack at synthesis time.
    """
    n = len(slices)
    subject = np.asarray(slices.subject)
    starts = np.r_[0, np.flatnonzero(np.diff(subject)) + 1]
    ends = np.r_[starts[1:], n] - 1
    segment = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    rows = np.arange(n)[:, None] + np.arange(-context, context + 1)[None, :]
    return np.clip(rows, starts[segment][:, None], ends[segment][:, None])


def drop_inputs(present: np.ndarray, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Hide each present input with ``probability``, always keeping at least one per sample."""
    if probability <= 0:
        return present
    keep = present & (rng.random(present.shape) >= probability)
    empty = ~keep.any(axis=1)
    if empty.any():
        # give each emptied sample back one of its present contrasts, chosen at random
        scores = rng.random(present.shape) * present
        keep[empty, scores[empty].argmax(axis=1)] = True
    return keep


def stand_in_eligible(present: np.ndarray, source: int, target: int) -> np.ndarray:
    """The samples that have input ``source`` and lack ``target``: (B,) bool."""
    return present[:, source] & ~present[:, target]


def draw_stand_ins(present: np.ndarray, source: int, target: int, probability: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Which samples move their input ``source`` into the missing slot ``target``: (B,) bool.

    Each :func:`stand_in_eligible` sample with ``probability``.
    """
    return stand_in_eligible(present, source, target) & (rng.random(len(present)) < probability)


def move_inputs(present: np.ndarray, moved: np.ndarray, source: int, target: int) -> np.ndarray:
    """``present`` with ``source`` marked missing and ``target`` present on the ``moved`` samples."""
    present = present.copy()
    present[moved, target] = True
    present[moved, source] = False
    return present


def read_batch(slices: SliceSet, rows: np.ndarray, device: torch.device, neighbours: np.ndarray | None = None,
               present: np.ndarray | None = None, stand_in: tuple[np.ndarray, int, int] | None = None) -> Batch:
    """Gather ``rows`` (sorted for memory-mapped reads) into tensors on ``device``.

    A ``present`` mask that hides inputs the slices have (input dropout) keeps their availability
    in ``Batch.available``. ``stand_in`` = (moved, source, target) copies input ``source`` into the
    slot ``target`` on the ``moved`` rows (:func:`draw_stand_ins`), which then have ``target``, not ``source``.
    """
    if neighbours is not None and neighbours.shape[1] > 1:
        images = np.asarray(slices.inputs[neighbours[rows].ravel()])
        images = images.reshape(len(rows), neighbours.shape[1], *images.shape[1:]).swapaxes(1, 2)
    else:
        images = np.asarray(slices.inputs[rows])
    available = np.asarray(slices.present[rows])
    if stand_in is not None and stand_in[0].any():
        moved, source, target = stand_in
        images[moved, target] = images[moved, source]
        available = move_inputs(available, moved, source, target)
    present = available if present is None else present
    target = np.asarray(slices.target[rows])[:, None]
    pin = device.type == "cuda"

    def move(array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        return (tensor.pin_memory() if pin else tensor).to(device, non_blocking=pin)

    return Batch(images=move(images.astype(np.float32, copy=False)), present=move(present.astype(bool)),
                 target=move(target.astype(np.float32, copy=False)),
                 available=None if np.array_equal(available, present) else move(available.astype(bool)))


def rank_share(count: int, rank: int, world: int) -> np.ndarray:
    """Positions ``0..count-1`` of a global batch that rank ``rank`` of ``world`` takes (contiguous, disjoint)."""
    return np.array_split(np.arange(count), world)[rank]


def iterate_batches(slices: SliceSet, rows: np.ndarray, batch_size: int, device: torch.device,
                    rng: np.random.Generator | None = None, input_dropout: float = 0.0,
                    neighbours: np.ndarray | None = None, max_batches: int | None = None,
                    rank: int = 0, world: int = 1,
                    stand_in: tuple[int, int, float] | None = None) -> Iterator[Batch]:
    """Yield batches over ``rows``; shuffled when ``rng`` is given, in order otherwise.

    ``stand_in`` = (source, target, probability) moves input ``source`` into a missing ``target``
    slot on randomly drawn samples (:func:`draw_stand_ins`; with ``rng`` only), before input dropout.

    With ``world > 1`` ranks, every rank draws the same permutation and input dropout (same
    ``rng`` seed) for each global batch of ``batch_size`` rows and yields only its own share of it
    (:func:`rank_share`), weighted so that the ranks' averaged gradients equal the global batch's.
    """
    order = rng.permutation(rows) if rng is not None else np.asarray(rows)
    for i, start in enumerate(range(0, len(order), batch_size)):
        if max_batches is not None and i >= max_batches:
            break
        chunk = np.sort(order[start : start + batch_size])
        present = np.asarray(slices.present[chunk])
        moves = None
        if rng is not None and stand_in is not None:
            source, target, probability = stand_in
            moved = draw_stand_ins(present, source, target, probability, rng)
            present = move_inputs(present, moved, source, target)
            moves = (moved, source, target)
        if rng is not None:
            present = drop_inputs(present, input_dropout, rng)
        if world == 1:
            yield read_batch(slices, chunk, device, neighbours, present, moves)
            continue
        share = rank_share(len(chunk), rank, world)
        if len(share) == 0:  # join the gradient all-reduce with a placeholder row that counts for nothing
            placeholder = read_batch(slices, chunk[:1], device, neighbours, present[:1])
            yield Batch(placeholder.images, placeholder.present, placeholder.target, weight=0.0, samples=0)
            continue
        batch = read_batch(slices, chunk[share], device, neighbours, present[share],
                           None if moves is None else (moves[0][share], *moves[1:]))
        batch.weight = len(share) * world / len(chunk)
        yield batch


def prefetch(batches: Iterator[Batch], depth: int = 2, device: torch.device | None = None) -> Iterator[Batch]:
    """Gather batches in a background thread, up to ``depth`` ahead of the consumer.

    The producer keeps the order (and so the random draws) of ``batches``; an exception in it is
    re-raised here; closing this generator early stops the thread. With a CUDA ``device`` the
    thread makes it current, so that pinning does not open a context on another GPU.
    """
    if device is not None and device.type == "cuda" and device.index is None:  # "cuda": the caller's current GPU
        device = torch.device("cuda", torch.cuda.current_device())
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            if device is not None and device.type == "cuda":
                torch.cuda.set_device(device)
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as error:  # handed to the consumer
            slots.put(error)

    thread = threading.Thread(target=produce, name="mrsynth-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
