"""``mrsynth compare``: look at a synthesised volume next to the real one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from mrsynth.cli.app import app


@app.command()
def compare(
    synthesized: Path = typer.Option(..., "--synthesized", help="Synthesised NIfTI (its grid is used)."),
    truth: Path = typer.Option(..., "--truth", help="Real scan of the same contrast (resampled onto that grid)."),
    out: Path = typer.Option(..., "--out", help="PNG to write."),
    brain_from: Path = typer.Option(None, "--brain-from", help="Optional skull-stripped volume whose non-zero voxels limit the error."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
) -> None:
    """Write a side-by-side figure and print the MSE of the mean-normalised volumes where both have signal."""
    from mrsynth.errors import InputError
    from mrsynth.evaluation.report import plot_volume_comparison
    from mrsynth.io.resample import resample_to, same_grid
    from mrsynth.io.volumes import load_volume

    if out.exists() and not force:
        raise InputError("output file exists; use --force to overwrite", path=out)
    synth = load_volume(synthesized, "synthesised")
    real = load_volume(truth, "truth")
    if not same_grid(real, synth):
        real = resample_to(real, synth)
    real_data = np.clip(real.data, 0, None)
    mask = (synth.data > 0) & (real_data > 0)
    if brain_from is not None:
        brain = load_volume(brain_from, "brain")
        mask &= (resample_to(brain, synth).data if not same_grid(brain, synth) else brain.data) > 0
    a = synth.data / synth.data[mask].mean()
    b = real_data / real_data[mask].mean()
    mse = float(np.mean((a[mask] - b[mask]) ** 2))
    plot_volume_comparison(synth.data * mask, real_data * mask, out,
                           title=f"{synthesized.name} vs {truth.name}\nMSE {mse:.3f} (each divided by its mean over the common voxels)")
    typer.echo(f"MSE {mse:.4f} over {int(mask.sum())} common voxels; figure: {out}")
