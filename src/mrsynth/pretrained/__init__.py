"""Checkpoints shipped inside the package, addressed as ``pretrained:NAME``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mrsynth.data.preprocessing import PreprocessConfig
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


def model_card(name: str) -> dict:
    """The JSON card shipped beside ``<name>.pt``: training data, licences, errors, required preprocessing."""
    import json

    path = resources.files(__name__) / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def describe_shipped_models() -> str:
    """Human-readable list of the shipped models for ``mrsynth models``."""
    from mrsynth.training.checkpoint import load_checkpoint

    models = shipped_models()
    if not models:
        return "no pretrained models are shipped with this installation"
    lines = []
    for name, path in sorted(models.items()):
        checkpoint, _ = load_checkpoint(path)
        card = model_card(name)
        config = checkpoint.model_config
        lines.append(f"{PREFIX}{name}  ({path.stat().st_size / 1e6:.1f} MB)")
        lines.append(f"  inputs: {', '.join(config.inputs)} (any non-empty subset)  ->  target: {config.target}")
        size = checkpoint.preprocess.get("size")
        lines.append(f"  working size: {size[0]}x{size[1]}; normalisation: {PreprocessConfig.from_dict(checkpoint.preprocess).describe_normalisation()}"
                     if size else "")
        networks = 1 + len(checkpoint.members)
        ensemble = f"; {networks} networks (seeds of one configuration) averaged" if networks > 1 else ""
        lines.append(f"  synthesis: {config.describe_synthesis()}{ensemble}")
        for key in ("training_data", "licences", "input_requirements", "command"):
            if key in card:
                lines.append(f"  {key.replace('_', ' ')}: {card[key]}")
        if "crossval_note" in card:
            lines.append(f"  cross-validation: {card['crossval_note']}")
        forest = card.get("crossval_forest_mse", {})
        for subset, value in card.get("crossval_mse", {}).items():
            beside = f"  (random forest, same folds: {forest[subset]})" if subset in forest else ""
            lines.append(f"  cross-validated MSE {subset}: {value}{beside}")
    return "\n".join(line for line in lines if line)
