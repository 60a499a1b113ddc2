"""``mrsynth models``: the pretrained models shipped inside the package."""

from __future__ import annotations

import typer

from mrsynth.cli.app import app


@app.command()
def models() -> None:
    """List the shipped models: inputs, target, training data and licences, errors, required preprocessing."""
    from mrsynth.pretrained import describe_shipped_models

    typer.echo(describe_shipped_models())
