"""The shared Typer app and option parsers of the ``mrsynth`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mrsynth.contrasts import parse_contrast_list

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Robust multi-input MR image synthesis (Joyce et al., MICCAI 2017) from any subset of contrasts.")


def _contrasts(text: str) -> tuple[str, ...]:
    try:
        return parse_contrast_list(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not HEIGHTxWIDTH, e.g. 128x128") from None
    if height % 4 or width % 4 or height < 4 or width < 4:
        raise typer.BadParameter(f"{text}: both sides must be positive multiples of 4 (two 2x2 poolings)")
    return height, width


def _pairs(values: list[str]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"{value!r} is not CONTRAST=PATH, e.g. t1=t1.nii.gz")
        if name in files:
            raise typer.BadParameter(f"contrast {name} is given twice")
        files[name] = Path(path)
    return files


DataOpt = Annotated[Path, typer.Option("--data", help="Dataset: a CSV manifest (subject,contrast,path) or a folder (BraTS, ISLES 2015, or subjects whose file names name their contrasts).")]
LayoutOpt = Annotated[Optional[str], typer.Option("--layout", help="Force the layout: manifest, brats, isles2015, folder (default: detected).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")]


FeaturesOpt = Annotated[Optional[int], typer.Option("--features", help="Width of the encoders' first level, doubling at each pooling [default: the preset's: 16 default, 32 paper].")]
PresetOpt = Annotated[str, typer.Option("--preset", help="Model recipe: default (the paper's model plus the levers that helped in our ablation) or paper (Joyce et al. 2017 as published).")]
ContextOpt = Annotated[Optional[int], typer.Option("--context-slices", help="Neighbouring slices on each side as extra input channels (2.5D) [default: the preset's].")]
AugmentOpt = Annotated[Optional[bool], typer.Option("--augment/--no-augment", help="Random flips, rotations, scalings, intensity scale, gamma and bias field in training (MONAI) [default: the preset's].")]
ScheduleOpt = Annotated[Optional[str], typer.Option("--schedule", help="Learning rate over epochs: constant or cosine [default: the preset's].")]
WarmupOpt = Annotated[Optional[int], typer.Option("--warmup-epochs", help="Epochs over which the learning rate ramps up from ~0 [default: the preset's].")]
MseWeightOpt = Annotated[Optional[float], typer.Option("--mse-weight", help="Weight of an extra MSE term on the fused output [default: the preset's; paper: 0].")]
FlipOpt = Annotated[Optional[bool], typer.Option("--test-time-flip/--no-test-time-flip", help="The model averages its output with that of the left-right flipped input at synthesis [default: the preset's].")]
ValFractionOpt = Annotated[Optional[float], typer.Option("--val-fraction", help="Fraction of (each fold's) training SUBJECTS held out for early stopping; 0 trains on all [default: the preset's].")]
InputDropoutOpt = Annotated[Optional[float], typer.Option("--input-dropout", help="Probability of hiding each input per training sample [default: the preset's; paper: 0].")]


def _levers(features: Optional[int], context_slices: Optional[int], augment: Optional[bool], schedule: Optional[str], mse_weight: Optional[float],
            test_time_flip: Optional[bool], val_fraction: Optional[float], input_dropout: Optional[float],
            warmup_epochs: Optional[int] = None):
    """The lever options given on the command line (None: keep the preset's)."""
    from mrsynth.training.presets import Levers

    return Levers(encoder_features=features, context_slices=context_slices, test_time_flip=test_time_flip, augment=augment, schedule=schedule,
                  fused_mse=mse_weight, val_fraction=val_fraction, input_dropout=input_dropout,
                  warmup_epochs=warmup_epochs)
