"""``mrsynth models``: the pretrained models shipped inside the package."""

from __future__ import annotations

import typer

from mrsynth.cli.app import app


@app.command()
def models() -> None:
    """List the shipped models: inputs, target, training data and licences, errors, required preprocessing."""
    from mrsynth.pretrained import describe_shipped_models

    typer.echo(describe_shipped_models())


@app.command()
def ensemble(
    model: list[str] = typer.Option(..., "--model", help="A checkpoint, run folder or pretrained:NAME; repeat for each member (same configuration)."),
    out: str = typer.Option(..., "--out", help="The ensemble checkpoint to write (.pt)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT if it exists."),
) -> None:
    """Combine models of one configuration (e.g. trained with different --seed) into one that averages them."""
    from pathlib import Path

    from mrsynth.errors import InputError
    from mrsynth.pretrained import resolve_model_path
    from mrsynth.training import load_checkpoint, save_checkpoint
    from mrsynth.training.checkpoint import combine_checkpoints

    target = Path(out)
    if target.exists() and not force:
        raise InputError("exists already; use --force to overwrite it", path=target)
    checkpoints = [load_checkpoint(resolve_model_path(name))[0] for name in model]
    save_checkpoint(combine_checkpoints(checkpoints, list(model)), target)
    members = sum(1 + len(c.members) for c in checkpoints)
    typer.echo(f"ensemble of {members} networks written to {target}")
