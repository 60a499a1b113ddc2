"""Core commands: train, synthesize, inspect."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from mrsynth.cli.app import DataOpt, DeviceOpt, FeaturesOpt, LayoutOpt, _contrasts, _pairs, _size, app, with_levers

if TYPE_CHECKING:
    from mrsynth.model import LossWeights


def _loss_weights(text: str) -> "LossWeights":
    from mrsynth.model import LossWeights

    try:
        fused, variance, individual = (float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not three comma-separated numbers, e.g. 1,1,1") from None
    if min(fused, variance, individual) < 0:
        raise typer.BadParameter("loss weights must be non-negative")
    return LossWeights(fused_mae=fused, latent_variance=variance, individual_mae=individual)


@app.command()
@with_levers
def train(
    data: DataOpt,
    inputs: Annotated[str, typer.Option("--inputs", help="Input contrasts in order, e.g. t1,t2,dwi; the first present one is the alignment reference.")],
    target: Annotated[str, typer.Option("--target", help="Contrast to synthesise, e.g. flair.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: model.pt (best; with an ensemble, the members' average), last.pt, history.csv, config.json (with an ensemble, per member in OUT/member1, ...).")],
    epochs: int = typer.Option(30, help="Maximum number of epochs."),
    batch_size: int = typer.Option(32, "--batch-size", help="Slices per batch (the paper: 32)."),
    size: str = typer.Option("128x128", help="Working slice size HEIGHTxWIDTH, multiples of 4 (paper: 128x128 BRATS, 112x80 ISLES)."),
    device: DeviceOpt = "auto",
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from OUT/last.pt (an ensemble: reuse finished members, continue the others from OUT/memberK/last.pt)."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    patience: int = typer.Option(8, help="Early stopping: epochs without validation improvement."),
    seed: int = typer.Option(0, help="Random seed (weights, split, batches)."),
    preset: str = "default",
    levers: object = None,  # filled by with_levers
    loss_weights: str = typer.Option("1,1,1", "--loss-weights", help="Weights of MAE(fused), latent variance, sum of individual MAEs."),
    fusion: str = typer.Option("max", help="Fusion of latents: max (the paper) or mean."),
    spatial_transformer: bool = typer.Option(True, "--spatial-transformer/--no-spatial-transformer", help="Align latents with the affine spatial transformer."),
    latent_channels: int = typer.Option(16, "--latent-channels", help="Latent channels L (paper: 16)."),
    decoder_layers: int = typer.Option(2, "--decoder-layers", help="Densely connected 3x3 convolutions of the decoder (paper: 2)."),
    features: FeaturesOpt = None,
    amp: bool = typer.Option(True, "--amp/--no-amp", help="bf16 mixed precision on CUDA."),
    ddp: Optional[bool] = typer.Option(None, "--ddp/--no-ddp", help="DistributedDataParallel over the processes torchrun starts (default: on when torchrun's WORLD_SIZE > 1); --batch-size stays the global batch."),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the encoders, transformer and decoder (default: off)."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="NHWC convolutions in training (default: off; synthesis uses them on CUDA)."),
    batched_encoders: Optional[bool] = typer.Option(None, "--batched-encoders/--no-batched-encoders", help="Run all contrasts' encoders as one vmapped call when all are present (default: off)."),
    prefetch: Optional[bool] = typer.Option(None, "--prefetch/--no-prefetch", help="Gather batches in a background thread (default: on for CUDA)."),
    cudnn_benchmark: bool = typer.Option(False, "--cudnn-benchmark/--no-cudnn-benchmark", help="Let cuDNN time its algorithms for each convolution shape while training (CUDA; default: off, not yet measured)."),
    margin: int = typer.Option(4, help="Voxels of margin around the brain bounding box."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Start from this model's weights (checkpoint, run folder or pretrained:NAME; encoders matched by contrast; an ensemble's network k starts member k), 'simulator' (the shipped pretrained:sim-<target>, if one fits) or 'none' [default: the preset's: simulator for default, none for paper]."),
    layout: LayoutOpt = None,
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Preprocessed-slice cache (default: $MRSYNTH_CACHE or ~/.cache/mrsynth)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train the multi-input synthesis model on a dataset."""
    from mrsynth.data.preprocessing import PreprocessConfig
    from mrsynth.model import ModelConfig
    from mrsynth.errors import MrsynthError
    from mrsynth.training import TrainConfig
    from mrsynth.training.pipeline import default_cache_dir, train_on_dataset
    from mrsynth.training.presets import get_preset

    try:
        model_config = ModelConfig(inputs=_contrasts(inputs), target=_contrasts(target)[0], latent_channels=latent_channels,
                                   decoder_layers=decoder_layers, use_spatial_transformer=spatial_transformer, fusion=fusion)
        train_config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=lr, patience=patience, seed=seed,
                                   device=device, amp=amp, loss_weights=_loss_weights(loss_weights), progress=progress,
                                   ddp=ddp, compile=compile, channels_last=channels_last,
                                   batched_encoders=batched_encoders, prefetch=prefetch, cudnn_benchmark=cudnn_benchmark)
        levers = replace(levers, encoder_features=features)
        if levers.latent_variance is None:  # --loss-weights' variance weight, unless --variance-weight is given
            levers = replace(levers, latent_variance=train_config.loss_weights.latent_variance)
        model_config, train_config = get_preset(preset).apply(model_config, train_config, levers)
        models = get_preset(preset).ensemble_size(levers)
    except ValueError as error:
        raise MrsynthError(str(error)) from None
    if init_from is None:
        init_from = get_preset(preset).resolve(levers).init_from
    try:
        preprocess = get_preset(preset).preprocess(PreprocessConfig(size=_size(size), margin=margin), levers)
    except ValueError as error:
        raise MrsynthError(str(error)) from None
    result = train_on_dataset(data, model_config, train_config, out, preprocess, layout=layout,
                              cache_dir=cache_dir or default_cache_dir(), resume=resume, init_from=init_from,
                              ensemble=models)
    for member in result.members:
        typer.echo(f"{member.run_dir.name}: best epoch {member.best_epoch}: {member.best_value:.4f}")
    if result.members:
        typer.echo(f"ensemble of {len(result.members)} models written to {result.best_checkpoint}")
    else:
        typer.echo(f"best epoch {result.best_epoch}: {result.best_value:.4f}; model written to {result.best_checkpoint}")


@app.command()
def synthesize(
    model: Annotated[str, typer.Option("--model", help="Checkpoint file, run folder, or pretrained:NAME.")],
    input: Annotated[Optional[list[str]], typer.Option("--input", help="CONTRAST=PATH, repeat for each input you have (any non-empty subset).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output NIfTI for one subject.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Synthesise every subject of a dataset instead.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out-dir", help="With --data: folder for <subject>_<target>.nii.gz files.")] = None,
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
    device: DeviceOpt = "auto",
    reference: Optional[str] = typer.Option(None, help="Contrast whose grid the output is written on (default: the first of the model's inputs given)."),
    rescale_mean: Optional[float] = typer.Option(None, "--rescale-mean", help="Multiply the mean-normalised output so that its brain mean is this value."),
    flip_average: Optional[bool] = typer.Option(None, "--flip-average/--no-flip-average", help="Average with the left-right flipped prediction [default: as the model was trained to be used]."),
    calibrate_mean: Optional[bool] = typer.Option(None, "--calibrate-mean/--no-calibrate-mean", help="Rescale the output to the inputs' brain mean [default: as the model was trained to be used]."),
    flip_average_ap: Optional[bool] = typer.Option(None, "--flip-average-ap/--no-flip-average-ap", help="Also average over front-back flipped inputs [default: as the model was trained to be used]."),
    slice_smoothing: Optional[float] = typer.Option(None, "--slice-smoothing", min=0.0, help="Smooth the output across slices with a Gaussian of this sigma, in slices; 0: off [default: as the model was trained to be used]."),
    layout: LayoutOpt = None,
) -> None:
    """Synthesise the model's target contrast from the inputs you have."""
    from mrsynth.inference.batch import synthesize_dataset
    from mrsynth.inference import Synthesizer

    synthesizer = Synthesizer.load(model, device=device, flip_average=flip_average, calibrate=calibrate_mean,
                                   flip_ap=flip_average_ap, slice_smoothing=slice_smoothing)
    if data is not None:
        if input or out is not None:
            raise typer.BadParameter("use either --data with --out-dir, or --input with --out")
        if out_dir is None:
            raise typer.BadParameter("--data needs --out-dir")
        written = synthesize_dataset(synthesizer, data, out_dir, layout=layout, force=force, rescale_mean=rescale_mean)
        typer.echo(f"wrote {len(written)} volumes to {out_dir}")
        return
    if out is None:
        raise typer.BadParameter("--out is required (or --data with --out-dir)")
    files = _pairs(input or [])
    result = synthesizer.synthesize_files(files, reference=reference)
    path = synthesizer.write(result, out, force=force, rescale_mean=rescale_mean)
    typer.echo(f"{synthesizer.target} synthesised from {', '.join(result.used_contrasts)} "
               f"on the {result.reference_contrast} grid {result.image.shape}: {path}")


@app.command()
def inspect(
    data: DataOpt,
    layout: LayoutOpt = None,
    inputs: Optional[str] = typer.Option(None, "--inputs", help="Also say which subjects a model with these inputs could use."),
    target: Optional[str] = typer.Option(None, "--target", help="Also say which subjects lack this target."),
) -> None:
    """Print what a dataset holds: subjects, contrasts, grids, and anything skipped with the reason."""
    from mrsynth.io.layouts import discover_dataset, format_inspection

    index = discover_dataset(data, layout)
    typer.echo(format_inspection(index, inputs=_contrasts(inputs) if inputs else (),
                                 target=_contrasts(target)[0] if target else None))


