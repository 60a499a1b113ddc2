"""Synthesis with a trained checkpoint: slice stacks in memory, or files in and a NIfTI out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from mrsynth.contrasts import canonical_contrast
from mrsynth.data.preprocessing import PreparedSubject, PreprocessConfig, prepare_subject, restore_volume
from mrsynth.errors import CheckpointError, InputError
from mrsynth.inference.calibration import calibrate_mean
from mrsynth.io.subject import SubjectVolumes, load_subject, to_reference_grid
from mrsynth.io.volumes import save_volume
from mrsynth.pretrained import resolve_model_path
from mrsynth.training.checkpoint import Checkpoint, load_checkpoint
from mrsynth.training.trainer import resolve_device


@dataclass
class SynthesisResult:
    """A synthesised volume on the reference input's original grid, and what it came from."""

    image: np.ndarray  # reference's original voxel order, float32, target's mean-normalised units
    affine: np.ndarray
    reference_contrast: str
    used_contrasts: tuple[str, ...]
    working_slices: np.ndarray  # (S, H, W) network output in the preprocessed space
    prepared: PreparedSubject
    subject: SubjectVolumes


def _flip(images: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """``images`` flipped along ``axes`` (none: as they are); applied twice, the identity."""
    return images.flip(axes) if axes else images


class Synthesizer:
    """Run a trained model on any non-empty subset of its input contrasts.

    >>> synth = Synthesizer.load("runs/flair/model.pt")          # doctest: +SKIP
    >>> result = synth.synthesize_files({"t1": "t1.nii.gz"})       # doctest: +SKIP
    >>> synth.write(result, "flair.nii.gz")                        # doctest: +SKIP
    """

    def __init__(self, checkpoint: Checkpoint, device: str = "auto", batch_size: int | None = None,
                 flip_average: bool | None = None, calibrate: bool | None = None, flip_ap: bool | None = None,
                 slice_smoothing: float | None = None):
        """``flip_average``, ``flip_ap``, ``slice_smoothing`` and ``calibrate`` None follow the model's
        ``test_time_flip``, ``test_time_flip_ap``, ``slice_smoothing`` and ``calibrate_mean`` settings;
        ``batch_size`` None the device's default.

        Mean calibration (:mod:`mrsynth.inference.calibration`) needs inputs scaled like the target (by
        the brain mean); a model whose inputs were scaled otherwise refuses it.
        """
        given = {"test_time_flip": flip_average, "test_time_flip_ap": flip_ap, "slice_smoothing": slice_smoothing,
                 "calibrate_mean": calibrate}
        config = replace(checkpoint.model_config, **{k: v for k, v in given.items() if v is not None})  # validates them
        self.checkpoint = checkpoint
        self.device = resolve_device(device)
        self.models = checkpoint.build_models(self.device)  # one, or an ensemble averaged at synthesis
        self.batch_size = batch_size or self.default_batch_size(self.device)
        self.flip_average, self.flip_ap = config.test_time_flip, config.test_time_flip_ap
        self.slice_smoothing, self.calibrate = float(config.slice_smoothing), config.calibrate_mean
        if self.calibrate and not self.preprocess.inputs_scaled_like_target("mean"):
            raise CheckpointError(f"mean calibration needs every volume scaled by its brain mean; this model's "
                                  f"preprocessing is: {self.preprocess.describe_normalisation()}")

    @staticmethod
    def default_batch_size(device: torch.device) -> int:
        """Slices per forward pass: 8 on CPU, where small batches stay in cache (measured 1.3-1.9x faster
        than 64 at 128x128 on 2 cores, ``benchmarks/README.md``), 64 on GPU."""
        return 64 if device.type == "cuda" else 8

    @classmethod
    def load(cls, model: str | Path, device: str = "auto", batch_size: int | None = None,
             flip_average: bool | None = None, calibrate: bool | None = None, flip_ap: bool | None = None,
             slice_smoothing: float | None = None) -> "Synthesizer":
        """Load from a checkpoint file, a run folder, or ``pretrained:NAME``."""
        checkpoint, _ = load_checkpoint(resolve_model_path(model))
        return cls(checkpoint, device=device, batch_size=batch_size, flip_average=flip_average, calibrate=calibrate,
                   flip_ap=flip_ap, slice_smoothing=slice_smoothing)

    @property
    def model(self) -> torch.nn.Module:
        """The (first) network."""
        return self.models[0]

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.checkpoint.model_config.inputs

    @property
    def target(self) -> str:
        return self.checkpoint.model_config.target

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig.from_dict(self.checkpoint.preprocess) if self.checkpoint.preprocess else PreprocessConfig()

    def _context(self, stack: torch.Tensor) -> torch.Tensor:
        k = self.checkpoint.model_config.context_slices
        if k == 0:
            return stack
        index = torch.arange(stack.shape[0], device=stack.device)[:, None] + torch.arange(-k, k + 1, device=stack.device)
        neighbours = stack[index.clamp(0, stack.shape[0] - 1)]  # (S, K, C, H, W)
        return neighbours.transpose(1, 2)

    @property
    def flips(self) -> list[tuple[int, ...]]:
        """The slice axes flipped in each run that synthesis averages: () is the input as it is.

        Left-right is the slices' first axis (RAS voxel order), front-back the second; with both, every
        combination of the two.
        """
        lr = [(), (-2,)] if self.flip_average else [()]
        return [axes + ap for axes in lr for ap in ([(), (-1,)] if self.flip_ap else [()])]

    @torch.inference_mode()
    def predict_stack(self, stack: np.ndarray, present: Sequence[bool] | np.ndarray) -> np.ndarray:
        """Synthesise ``(S, H, W)`` from one subject's ordered slices ``(S, C, H, W)`` (C = model inputs).

        ``present`` is ``(C,)`` for the whole stack or ``(S, C)`` per slice; absent channels are ignored.
        The runs of :attr:`flips` are averaged, smoothed across slices (``slice_smoothing``), set to 0
        outside every present input's brain and, with ``calibrate``, given the inputs' brain mean.
        """
        stack = np.ascontiguousarray(stack, dtype=np.float32)
        present = np.broadcast_to(np.asarray(present, dtype=bool), stack.shape[:2])
        images = self._context(torch.from_numpy(stack).to(self.device))
        present_t = torch.from_numpy(present.copy()).to(self.device)
        outputs = []
        use_amp = self.device.type == "cuda"
        for start in range(0, images.shape[0], self.batch_size):
            chunk, mask = images[start : start + self.batch_size], present_t[start : start + self.batch_size]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                runs = [_flip(model(_flip(chunk, axes), mask, decode_individual=False).image.float(), axes)
                        for axes in self.flips for model in self.models]
            outputs.append(torch.stack(runs).mean(dim=0)[:, 0])
        result = torch.cat(outputs).cpu().numpy()
        if self.slice_smoothing > 0:
            result = gaussian_filter1d(result, self.slice_smoothing, axis=0, mode="nearest")
        # outside every present input's brain the target is background too
        result[~((stack > 0) & present[:, :, None, None]).any(axis=1)] = 0.0
        return calibrate_mean(result, stack, present.any(axis=0)) if self.calibrate else result

    def check_inputs(self, files: Mapping[str, str | Path]) -> dict[str, Path]:
        """Canonicalise contrast names and refuse ones the model does not take."""
        if not files:
            raise InputError(f"no input given: pass at least one of {', '.join(self.inputs)} (e.g. --input t1=t1.nii.gz)")
        checked: dict[str, Path] = {}
        for name, path in files.items():
            try:
                contrast = canonical_contrast(name)
            except ValueError as error:
                raise InputError(str(error), path=path, contrast=name) from None
            if contrast not in self.inputs:
                raise InputError(f"the model was not trained on this contrast; it takes {', '.join(self.inputs)}",
                                 path=path, contrast=contrast)
            if contrast in checked:
                raise InputError("given twice", path=path, contrast=contrast)
            checked[contrast] = Path(path)
        return checked

    def synthesize_files(self, files: Mapping[str, str | Path], subject: str = "subject",
                         reference: str | None = None) -> SynthesisResult:
        """Load, preprocess, synthesise slice by slice, and undo crop, resize and reorientation."""
        checked = self.check_inputs(files)
        if reference is not None:
            try:
                reference = canonical_contrast(reference)
            except ValueError as error:
                raise InputError(str(error), contrast=reference) from None
        volumes = load_subject(checked, self.inputs, reference=reference, subject=subject)
        prepared = prepare_subject(volumes.volumes, self.preprocess)
        present = np.array([c in prepared.slices for c in self.inputs])
        shape = next(iter(prepared.slices.values())).shape
        stack = np.stack([prepared.slices.get(c, np.zeros(shape, np.float32)) for c in self.inputs], axis=1)
        working = self.predict_stack(stack, present)
        on_grid = restore_volume(working, prepared.geometry)
        image = to_reference_grid(on_grid, volumes).astype(np.float32)
        return SynthesisResult(image=image, affine=volumes.reference.affine, reference_contrast=volumes.reference_contrast,
                               used_contrasts=tuple(c for c in self.inputs if c in prepared.slices),
                               working_slices=working, prepared=prepared, subject=volumes)

    def write(self, result: SynthesisResult, out: str | Path, force: bool = False, rescale_mean: float | None = None) -> Path:
        """Write the result as float32 NIfTI (atomically; refuses to overwrite unless ``force``).

        ``rescale_mean`` multiplies the mean-normalised output so its brain mean becomes that value.
        """
        image = result.image if rescale_mean is None else result.image * np.float32(rescale_mean)
        return save_volume(image, result.affine, out, force=force)
