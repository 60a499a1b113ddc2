"""Checkpoints shipped inside the package, addressed as ``pretrained:NAME``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mrsynth.errors import CheckpointError

PREFIX = "pretrained:"


def shipped_models() -> dict[str, Path]:
    """Name -> path of every checkpoint shipped under ``mrsynth/pretrained/``."""
    folder = resources.files(__name__)
    return {Path(str(entry)).stem: Path(str(entry)) for entry in folder.iterdir() if str(entry).endswith(".pt")}


def resolve_model_path(spec: str | Path) -> Path:
    """Turn ``pretrained:flair``, a run folder or a checkpoint file into a checkpoint path."""
    text = str(spec)
    if text.startswith(PREFIX):
        name = text[len(PREFIX):]
        models = shipped_models()
        if name not in models:
            available = ", ".join(sorted(models)) or "none"
            raise CheckpointError(f"no shipped model named {name!r} (shipped: {available})")
        return models[name]
    path = Path(spec)
    if path.is_dir():
        path = path / "model.pt"
    return path
