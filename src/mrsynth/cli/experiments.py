"""Experiment commands: evaluate, crossval, experiment (thin wrappers over ``mrsynth.experiments``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from mrsynth.cli.app import DataOpt, DeviceOpt, FeaturesOpt, LayoutOpt, _contrasts, _size, app, with_levers
from mrsynth.errors import MrsynthError

if TYPE_CHECKING:
    from mrsynth.experiments import ExperimentResult

OutOpt = Annotated[Path, typer.Option("--out", help="Output folder (tables, CSVs, report, models).")]
CacheOpt = Annotated[Optional[Path], typer.Option("--cache-dir", help="Preprocessed-slice cache (default: $MRSYNTH_CACHE or ~/.cache/mrsynth).")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress")]


@app.command()
def evaluate(
    model: Annotated[str, typer.Option("--model", help="Checkpoint file, run folder, or pretrained:NAME.")],
    data: DataOpt,
    out: OutOpt,
    save_volumes: bool = typer.Option(False, "--save-volumes", help="Also write every prediction and target (preprocessed space) as NIfTI under OUT/volumes."),
    device: DeviceOpt = "auto",
    layout: LayoutOpt = None,
    cache_dir: CacheOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Evaluate a model on a dataset for every non-empty subset of its inputs (MSE, MAE, PSNR, SSIM)."""
    from mrsynth.experiments import evaluate_checkpoint

    result = evaluate_checkpoint(model, data, out, save_volumes=save_volumes, device=device, layout=layout,
                                 cache_dir=cache_dir, progress=progress)
    typer.echo(result.table.to_markdown(metric=None))
    if result.seen_in_training:
        typer.echo(f"warning: {len(result.seen_in_training)} evaluated subjects were used in training: "
                   f"{', '.join(result.seen_in_training)}", err=True)
    typer.echo(f"per-subject metrics: {result.metrics_csv}; summary: {result.markdown}")


@app.command()
@with_levers
def crossval(
    data: DataOpt,
    inputs: Annotated[str, typer.Option("--inputs", help="Input contrasts in order, e.g. t1,t2,dwi.")],
    target: Annotated[str, typer.Option("--target", help="Contrast to synthesise, e.g. flair.")],
    out: OutOpt,
    folds: int = typer.Option(5, help="Folds by subject (>= number of subjects: leave-one-out)."),
    epochs: int = typer.Option(30, help="Maximum number of epochs per fold."),
    batch_size: int = typer.Option(32, "--batch-size", help="Slices per batch."),
    size: str = typer.Option("128x128", help="Working slice size HEIGHTxWIDTH, multiples of 4."),
    device: DeviceOpt = "auto",
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    patience: int = typer.Option(8, help="Early stopping: epochs without validation improvement."),
    seed: int = typer.Option(0, help="Random seed (folds, weights, batches)."),
    preset: str = "default",
    levers: object = None,  # filled by with_levers
    fusion: str = typer.Option("max", help="Fusion of latents: max (the paper) or mean."),
    spatial_transformer: bool = typer.Option(True, "--spatial-transformer/--no-spatial-transformer"),
    latent_channels: int = typer.Option(16, "--latent-channels", help="Latent channels L."),
    decoder_layers: int = typer.Option(2, "--decoder-layers", help="Densely connected 3x3 convolutions of the decoder (paper: 2)."),
    features: FeaturesOpt = None,
    amp: bool = typer.Option(True, "--amp/--no-amp", help="bf16 mixed precision on CUDA."),
    margin: int = typer.Option(4, help="Voxels of margin around the brain bounding box."),
    resume: bool = typer.Option(False, "--resume", help="Continue interrupted fold runs instead of retraining."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Fig. 4 / Fig. 2 style PNGs of a fold-1 test subject."),
    layout: LayoutOpt = None,
    cache_dir: CacheOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Cross-validate the model by subject; pooled per-subject results over every input subset."""
    from mrsynth.data.preprocessing import PreprocessConfig
    from mrsynth.errors import MrsynthError
    from mrsynth.experiments import RunSettings, run_crossval
    from mrsynth.model import ModelConfig
    from mrsynth.training import TrainConfig
    from mrsynth.training.presets import get_preset

    try:
        model = ModelConfig(inputs=_contrasts(inputs), target=_contrasts(target)[0], latent_channels=latent_channels,
                            decoder_layers=decoder_layers, use_spatial_transformer=spatial_transformer, fusion=fusion)
        train = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=lr, patience=patience, seed=seed,
                            device=device, amp=amp, progress=progress)
        model, train = get_preset(preset).apply(model, train, replace(levers, encoder_features=features))
        preprocess = get_preset(preset).preprocess(PreprocessConfig(size=_size(size), margin=margin), levers)
        ensemble = get_preset(preset).ensemble_size(levers)
    except ValueError as error:
        raise MrsynthError(str(error)) from None
    settings = RunSettings(model=model, train=train, preprocess=preprocess, resume=resume,
                           init_from=get_preset(preset).resolve(levers).init_from, ensemble=ensemble)
    result = run_crossval(data, settings, out, folds=folds, seed=seed, layout=layout, cache_dir=cache_dir,
                          progress=progress, figures=figures)
    _report(result)


@app.command()
@with_levers
def experiment(
    name: Annotated[str, typer.Argument(help="single-input (Table 1), subsets (Table 2), misalignment (5.3) or transfer (5.4).")],
    data: DataOpt,
    out: OutOpt,
    quick: bool = typer.Option(False, "--quick", help="Tiny settings for a smoke run (32x32, 2 epochs, 3 trees); other options still override."),
    inputs: Optional[str] = typer.Option(None, "--inputs", help="Input contrasts (default: the paper's for this experiment)."),
    target: Optional[str] = typer.Option(None, "--target", help="Target contrast (default: the paper's)."),
    folds: Optional[int] = typer.Option(None, help="Folds by subject; as many as the test subjects or more is leave-one-out [default: 5]."),
    fold: Optional[list[int]] = typer.Option(None, "--fold", help="Run only this fold (from 1; repeatable) of the same split, e.g. to spread the folds over processes, each with its own --out [default: all]."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per model [default: 30, as mrsynth train]."),
    size: Optional[str] = typer.Option(None, help="Working slice size HEIGHTxWIDTH [default: 64x64]."),
    features: Optional[int] = typer.Option(None, "--features", help="Encoder width [default: the preset's, 16 default, 32 paper]."),
    latent_channels: Optional[int] = typer.Option(None, "--latent-channels", help="Latent channels [default: 16]."),
    decoder_layers: Optional[int] = typer.Option(None, "--decoder-layers", help="Densely connected 3x3 convolutions of the decoder [default: 2, the paper's]."),
    fusion: Optional[str] = typer.Option(None, "--fusion", help="Fusion of latents: max (the paper) or mean [default: max]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Slices per batch [default: 32]."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate, the peak of the schedule [default: 0.001]."),
    trees: Optional[int] = typer.Option(None, help="Trees of the forest baseline [default: 30]."),
    samples: Optional[int] = typer.Option(None, "--samples", help="Forest training voxels per subject [default: 10000]."),
    forest_jobs: Optional[int] = typer.Option(None, "--forest-jobs", help="CPU cores each forest trains and predicts on, -1 for all; results do not change [default: 1]."),
    baselines: Optional[str] = typer.Option(None, "--baselines", help="Comparison methods, e.g. rf,dedis,linear, or none [default: all]."),
    preset: str = "default",
    levers: object = None,  # filled by with_levers
    seed: Optional[int] = typer.Option(None, help="Random seed (folds, weights, misalignment) [default: 0]."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, ... [default: auto]."),
    target_data: Optional[Path] = typer.Option(None, "--target-data", help="transfer: the new dataset to fine-tune on and test."),
    target_layout: Optional[str] = typer.Option(None, "--target-layout", help="transfer: layout of --target-data."),
    finetune_epochs: Optional[int] = typer.Option(None, "--finetune-epochs", help="transfer: epochs of decoder fine-tuning [default: --epochs]."),
    misaligned: Optional[str] = typer.Option(None, "--misaligned", help="misalignment: the input to perturb [default: the first]."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Start every model from this model's weights, 'simulator' (the shipped pretrained:sim-<target>) or 'none' [default: the preset's]."),
    test_requires: Optional[str] = typer.Option(None, "--test-requires", help="Test folds only over subjects with all these contrasts, e.g. t1,t2 (the others always train) [subsets]."),
    train_also: Optional[list[Path]] = typer.Option(None, "--train-also", help="Another dataset (folder, manifest or prepared slices, its layout detected; repeatable) whose subjects join every fold's training set and are never tested or validated on, e.g. mrsynth simulate subjects [single-input, subsets]."),
    blend_forest: Optional[list[float]] = typer.Option(None, "--blend-forest", help="Also test the model's and the forest's predictions averaged voxel by voxel, with this weight on the forest, strictly between 0 and 1 (repeatable); fits the forest [single-input, subsets]."),
    subset: Optional[list[str]] = typer.Option(None, "--subset", help="subsets: only this input subset, e.g. t1c or t1c+t2 (repeatable): (A) trains, and (B) and the baselines are tested, on the subsets given alone; (B) still trains on every input [default: every non-empty subset]."),
    per_subset: Optional[bool] = typer.Option(None, "--per-subset/--no-per-subset", help="subsets: also train (A), one model per input subset [default: yes]."),
    full_model: Optional[bool] = typer.Option(None, "--full-model/--no-full-model", help="subsets: train (B), the one model for all inputs; --no-full-model fits only (A) and/or the baselines [default: yes]."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write the Fig. 4 / Fig. 2 style PNGs."),
    resume: bool = typer.Option(False, "--resume", help="Continue interrupted model runs instead of retraining."),
    layout: LayoutOpt = None,
    cache_dir: CacheOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Run one of the paper's experiments and write OUT/report.md, CSVs and figures."""
    from mrsynth.errors import MrsynthError
    from mrsynth.experiments import EXPERIMENTS, ExperimentConfig, run_experiment

    if name not in EXPERIMENTS:
        raise MrsynthError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    try:
        config = ExperimentConfig(data=data, out=out, preset=preset, levers=levers)
        if quick:
            config = config.quick()
        config = config.with_overrides(
            inputs=_contrasts(inputs) if inputs else None, target=_contrasts(target)[0] if target else None, folds=folds,
            epochs=epochs, size=_size(size) if size else None, encoder_features=features, latent_channels=latent_channels,
            decoder_layers=decoder_layers, fusion=fusion,
            batch_size=batch_size, learning_rate=lr, trees=trees, forest_samples=samples, forest_jobs=forest_jobs, device=device, seed=seed,
            baselines=_baselines(baselines),
            target_data=target_data, target_layout=target_layout, finetune_epochs=finetune_epochs,
            misaligned=_contrasts(misaligned)[0] if misaligned else None, init_from=init_from, layout=layout,
            test_requires=_contrasts(test_requires) if test_requires else None, train_also=tuple(train_also) if train_also else None,
            blend_forest=tuple(blend_forest) if blend_forest else None,
            subsets=tuple(_contrasts(item.replace("+", ",")) for item in subset) if subset else None,
            per_subset_models=per_subset, full_model=full_model,
            only_folds=tuple(fold) if fold else None, cache_dir=cache_dir,
            figures=figures, resume=resume, progress=progress)
    except ValueError as error:
        raise MrsynthError(str(error)) from None
    _report(run_experiment(name, config))


def _baselines(text: Optional[str]) -> Optional[tuple[str, ...]]:
    """``--baselines``: None keeps the default, ``none`` runs the model alone."""
    if text is None:
        return None
    names = tuple(b.strip() for b in text.split(",") if b.strip())
    return () if names == ("none",) else names


def _report(result: "ExperimentResult") -> None:
    """Print each table's MSE in the paper's layout, the notes, and where the report is.

    An experiment in which every method was skipped (the notes say why, e.g. a resumed run trained
    with other settings) is an error, so that a script running it does not go on as if it had worked.
    """
    for item in result.tables:
        typer.echo(f"{item.title} (MSE):\n{item.table.to_markdown('mse')}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"report: {result.report}")
    if not any(item.table.rows for item in result.tables):
        raise MrsynthError(f"the experiment in {result.out_dir} produced no results: every method was skipped "
                           "(the notes above say why)")
