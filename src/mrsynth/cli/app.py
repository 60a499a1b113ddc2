"""The shared Typer app and option parsers of the ``mrsynth`` command line."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer
from typer.core import TyperGroup

from mrsynth.contrasts import parse_contrast_list
from mrsynth.training.distributed import refuse_multiple_processes

MULTI_PROCESS_COMMANDS = ("train",)  # the commands that torchrun may start once per GPU (DDP)


class _OneProcessGroup(TyperGroup):
    """The top-level group: every command but those in ``MULTI_PROCESS_COMMANDS`` refuses a torchrun launch
    with several processes (each would repeat the whole job and write the same files); ``--help`` still works."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        asks_for_help = any(arg in ctx.help_option_names for arg in rest)
        if name is not None and name not in MULTI_PROCESS_COMMANDS and not asks_for_help:
            refuse_multiple_processes(f"mrsynth {name}")
        return name, command, rest


app = typer.Typer(cls=_OneProcessGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
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
FlipApAugmentOpt = Annotated[Optional[float], typer.Option("--augment-flip-ap", min=0.0, max=1.0, help="Probability of a front-back flip among the training augmentations (with --augment) [default: the preset's].")]
ElasticAugmentOpt = Annotated[Optional[float], typer.Option("--augment-elastic", min=0.0, max=1.0, help="Probability of an elastic deformation among the training augmentations (with --augment; MONAI Rand2DElastic) [default: the preset's].")]
ScheduleOpt = Annotated[Optional[str], typer.Option("--schedule", help="Learning rate over epochs: constant or cosine [default: the preset's].")]
WarmupOpt = Annotated[Optional[int], typer.Option("--warmup-epochs", help="Epochs over which the learning rate ramps up from ~0 [default: the preset's].")]
MseWeightOpt = Annotated[Optional[float], typer.Option("--mse-weight", min=0.0, help="Weight of an extra MSE term on the fused output [default: the preset's; paper: 0].")]
IndividualMseOpt = Annotated[Optional[float], typer.Option("--individual-mse-weight", min=0.0, help="Weight of an extra MSE term on each input's latent decoded on its own, the synthesis from that input alone [default: the preset's; paper: 0].")]
SubsetFusionOpt = Annotated[Optional[float], typer.Option("--subset-fusion-weight", min=0.0, help="Weight of an extra MAE + MSE term on the decoded fusion of each proper subset of two or more of a sample's aligned latents (e.g. T1 + T2 of a sample with T1, T1c and T2), summed per sample: 3 terms with three inputs, 10 with four, 25 with five [default: the preset's: 1 for default, 0 for paper].")]
DecoderSeesInputsOpt = Annotated[Optional[bool], typer.Option("--decoder-sees-inputs/--no-decoder-sees-inputs", help="The decoder also reads which inputs were fused, one constant 0/1 channel per input contrast, so it can decode each input subset its own way (train it with --subset-fusion-weight to see every subset) [default: the preset's: on for default, off for paper].")]
VarianceWeightOpt = Annotated[Optional[float], typer.Option("--variance-weight", min=0.0, help="Weight of the cost's latent-variance term, which pulls the contrasts' latents together [default: the preset's, 1 as in the paper; train: what --loss-weights gives].")]
FlipOpt = Annotated[Optional[bool], typer.Option("--test-time-flip/--no-test-time-flip", help="The model averages its output with that of the left-right flipped input at synthesis [default: the preset's].")]
FlipApOpt = Annotated[Optional[bool], typer.Option("--test-time-flip-ap/--no-test-time-flip-ap", help="Synthesis also averages over front-back flipped inputs (with --test-time-flip: all four flips) [default: the preset's].")]
SliceSmoothingOpt = Annotated[Optional[float], typer.Option("--slice-smoothing", min=0.0, help="Synthesis smooths the output across slices with a Gaussian of this sigma, in slices; 0 turns it off [default: the preset's].")]
CalibrateOpt = Annotated[Optional[bool], typer.Option("--calibrate-mean/--no-calibrate-mean", help="Synthesis rescales the output so that its brain mean equals the inputs' (needs mean input scaling) [default: the preset's; paper: off].")]
ValFractionOpt = Annotated[Optional[float], typer.Option("--val-fraction", help="Fraction of (each fold's) training SUBJECTS held out for early stopping; 0 trains on all [default: the preset's].")]
InputDropoutOpt = Annotated[Optional[float], typer.Option("--input-dropout", help="Probability of hiding each input per training sample [default: the preset's; paper: 0].")]
StandInOpt = Annotated[Optional[str], typer.Option("--stand-in", metavar="SOURCE:TARGET", help="Where a training sample lacks TARGET but has SOURCE, move its SOURCE image into the TARGET slot with --stand-in-probability, so TARGET's encoder also learns from the subjects without it, e.g. t1:t1c; none: off [default: the preset's, none].")]
StandInProbabilityOpt = Annotated[Optional[float], typer.Option("--stand-in-probability", min=0.0, max=1.0, help="Probability per eligible training sample of --stand-in; 0: off [default: the preset's, 0.5].")]
CrossSynthesisOpt = Annotated[Optional[float], typer.Option("--cross-synthesis", min=0.0, help="Weight of extra training-only decoders that synthesise every input contrast from the latents (Chartsias et al. 2018); 0 adds none [default: the preset's, 0].")]
EnsembleOpt = Annotated[Optional[int], typer.Option("--ensemble", min=1, help="Train this many models per method, with seeds seed, seed+1, ..., and average them at synthesis; N times the training and synthesis time (train: members in OUT/member1, ..., their average in OUT/model.pt) [default: the preset's, 2 default, 1 paper].")]
InputNormOpt = Annotated[Optional[str], typer.Option("--input-normalisation", help="Scale each input volume by its brain mean (mean, the paper's) or its 99th brain percentile (percentile); the target keeps the mean [default: the preset's].")]


LEVER_OPTIONS = {"preset": (PresetOpt, "default"), "val_fraction": (ValFractionOpt, None),
                 "input_dropout": (InputDropoutOpt, None), "stand_in": (StandInOpt, None),
                 "stand_in_probability": (StandInProbabilityOpt, None), "augment": (AugmentOpt, None),
                 "augment_flip_ap": (FlipApAugmentOpt, None), "augment_elastic": (ElasticAugmentOpt, None), "schedule": (ScheduleOpt, None),
                 "warmup_epochs": (WarmupOpt, None), "mse_weight": (MseWeightOpt, None),
                 "variance_weight": (VarianceWeightOpt, None), "individual_mse_weight": (IndividualMseOpt, None),
                 "subset_fusion_weight": (SubsetFusionOpt, None),
                 "decoder_sees_inputs": (DecoderSeesInputsOpt, None),
                 "test_time_flip": (FlipOpt, None), "test_time_flip_ap": (FlipApOpt, None),
                 "slice_smoothing": (SliceSmoothingOpt, None), "calibrate_mean": (CalibrateOpt, None),
                 "context_slices": (ContextOpt, None),
                 "input_normalisation": (InputNormOpt, None), "cross_synthesis": (CrossSynthesisOpt, None),
                 "ensemble": (EnsembleOpt, None)}


def with_levers(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a training command ``--preset`` and every lever option; it receives ``preset`` and ``levers``.

    The options are declared once here instead of in each command; ``levers`` holds the ones
    given (None: keep the preset's), ``encoder_features`` left for the command to fill.
    """
    from mrsynth.training.presets import Levers

    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name not in ("preset", "levers")]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, (annotation, default) in LEVER_OPTIONS.items()]

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in LEVER_OPTIONS}
        levers = Levers(context_slices=given["context_slices"], test_time_flip=given["test_time_flip"],
                        test_time_flip_ap=given["test_time_flip_ap"], slice_smoothing=given["slice_smoothing"],
                        augment=given["augment"], augment_flip_ap=given["augment_flip_ap"], augment_elastic=given["augment_elastic"], schedule=given["schedule"], warmup_epochs=given["warmup_epochs"],
                        fused_mse=given["mse_weight"], val_fraction=given["val_fraction"],
                        input_dropout=given["input_dropout"], stand_in=given["stand_in"],
                        stand_in_probability=given["stand_in_probability"], input_normalisation=given["input_normalisation"],
                        latent_variance=given["variance_weight"], calibrate_mean=given["calibrate_mean"],
                        cross_synthesis=given["cross_synthesis"], individual_mse=given["individual_mse_weight"],
                        subset_fusion=given["subset_fusion_weight"],
                        decoder_sees_inputs=given["decoder_sees_inputs"],
                        ensemble=given["ensemble"])
        return command(*args, preset=given["preset"], levers=levers, **kwargs)

    run.__signature__ = signature.replace(parameters=kept + added)  # type: ignore[attr-defined]
    return run
