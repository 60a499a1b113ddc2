"""Settings of the paper's experiments, and the per-run settings every method is trained with."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mrsynth.baselines import BASELINE_NAMES, DedisConfig, ForestConfig
from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.model import ModelConfig
from mrsynth.model.config import FUSIONS, FusionKind
from mrsynth.training import TrainConfig
from mrsynth.training.presets import Levers, get_preset
from mrsynth.training.trainer import resolve_device


@dataclass(frozen=True)
class RunSettings:
    """How every method of one experiment is trained: the shared model template and baselines.

    ``model`` is a template (its target is the task's): each method replaces its inputs and (optionally) whether the
    spatial transformer is used. ``resume`` continues interrupted model runs instead of
    retraining them. ``init_from`` starts every model that is not fine-tuned from a given one
    from this checkpoint's weights (e.g. pre-trained on simulated subjects). ``ensemble`` trains
    that many models per method (seeds ``seed``, ``seed + 1``, ...) and averages their outputs.
    """

    model: ModelConfig
    train: TrainConfig
    preprocess: PreprocessConfig
    forest: ForestConfig = field(default_factory=ForestConfig)
    dedis: DedisConfig = field(default_factory=DedisConfig)
    resume: bool = False
    init_from: str | Path | None = None
    ensemble: int = 1

    @property
    def target(self) -> str:
        """The contrast every method synthesises."""
        return self.model.target

    def model_config(self, inputs: tuple[str, ...], spatial_transformer: bool | None = None) -> ModelConfig:
        """The template with this method's inputs and spatial-transformer choice."""
        use_st = self.model.use_spatial_transformer if spatial_transformer is None else spatial_transformer
        return replace(self.model, inputs=tuple(inputs), use_spatial_transformer=use_st)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything an experiment run depends on; the defaults are CPU-feasible, ``quick()`` is a smoke test.

    ``inputs``/``target`` left as None take each experiment's default (the paper's task).
    ``target_data`` is the new dataset of the transfer experiment; ``misaligned`` the input
    contrast that the misalignment experiment perturbs (default: the first input).
    ``only_folds`` runs only these folds (from 1) of the cross-validation split, e.g. to spread
    one experiment's folds over processes; the transfer experiment has no folds.
    ``train_also`` are further datasets (e.g. ``mrsynth simulate`` subjects) whose subjects join
    the training set of every fold and are never tested (single-input and subsets only).
    """

    data: Path
    out: Path
    inputs: tuple[str, ...] | None = None
    target: str | None = None
    folds: int = 5
    seed: int = 0
    size: tuple[int, int] = (64, 64)
    margin: int = 4
    epochs: int = 30  # as mrsynth train; the README's default-preset numbers are at 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 8
    preset: str = "default"
    levers: Levers = field(default_factory=Levers)
    max_batches_per_epoch: int | None = None
    encoder_features: int | None = None  # None: the preset's
    latent_channels: int = 16
    decoder_features: int = 16
    decoder_layers: int = 2  # the paper's shallow decoder
    fusion: FusionKind = "max"  # the paper's; "mean" is an option
    trees: int = 30
    forest_samples: int = 10000
    forest_depth: int | None = 20
    forest_jobs: int = 1  # CPU cores per forest (-1: all); the fitted trees do not depend on it
    dedis_epochs: int = 15
    dedis_features: int = 16
    baselines: tuple[str, ...] = ("rf", "dedis", "linear")
    device: str = "auto"
    layout: str | None = None
    cache_dir: Path | None = None
    target_data: Path | None = None
    target_layout: str | None = None
    finetune_volumes: tuple[int, ...] = (1, 2, 3)
    finetune_epochs: int | None = None
    misaligned: str | None = None
    init_from: Path | None = None
    ensemble: int | None = None  # models per method (seeds seed, seed + 1, ...); None: the preset's
    test_requires: tuple[str, ...] = ()
    train_also: tuple[Path, ...] = ()
    blend_forest: tuple[float, ...] = ()  # single-input, subsets: also test the model and forest averaged, each weight on the forest
    subsets: tuple[tuple[str, ...], ...] = ()  # subsets: only these input subsets (rows); () every non-empty subset
    per_subset_models: bool = True
    full_model: bool = True  # subsets: train (B), the one all-inputs model; False runs (A) and/or the baselines alone
    only_folds: tuple[int, ...] = ()
    max_angle: float = 8.0
    max_shift: float = 2.0
    figures: bool = True
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "train_also", tuple(Path(p) for p in self.train_also))
        object.__setattr__(self, "subsets", tuple(tuple(subset) for subset in self.subsets))
        if any(not subset for subset in self.subsets):
            raise ValueError("an input subset (--subset) needs at least one contrast")
        if self.folds < 2:
            raise ValueError("cross-validation needs at least 2 folds")
        if any(k < 1 for k in self.only_folds):
            raise ValueError("folds are numbered from 1")
        if self.ensemble is not None and self.ensemble < 1:
            raise ValueError("ensemble must be at least 1 model")
        if self.trees < 1 or self.forest_samples < 1 or self.epochs < 1 or self.dedis_epochs < 1:
            raise ValueError("trees, samples, epochs must be at least 1")
        if self.decoder_layers < 1:
            raise ValueError(f"decoder_layers (--decoder-layers) must be at least 1, got {self.decoder_layers}")
        if self.forest_jobs == 0 or self.forest_jobs < -1:
            raise ValueError(f"forest_jobs (--forest-jobs) must be a number of cores (at least 1) or -1 for all, got {self.forest_jobs}")
        unknown = [name for name in self.baselines if name not in BASELINE_NAMES]
        if unknown:
            raise ValueError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINE_NAMES)}")
        get_preset(self.preset)
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion (--fusion) must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        object.__setattr__(self, "blend_forest", tuple(float(w) for w in self.blend_forest))
        wrong = [w for w in self.blend_forest if not 0 < w < 1]
        if wrong:
            raise ValueError(f"--blend-forest is the forest's weight, between 0 and 1 (exclusive), got {', '.join(map(str, wrong))}")
        shown = [f"{w:g}" for w in self.blend_forest]
        if len(set(shown)) < len(shown):
            raise ValueError(f"--blend-forest weights must differ (they name the table's rows), got {', '.join(shown)}")
        if any(n < 1 for n in self.finetune_volumes):
            raise ValueError("fine-tuning volume counts must be at least 1")

    def quick(self) -> "ExperimentConfig":
        """Tiny settings for smoke runs: 32x32 slices, 2 epochs, narrow networks, 3 small trees."""
        return replace(self, size=(32, 32), epochs=2, batch_size=16, encoder_features=4, latent_channels=4,
                       decoder_features=4, max_batches_per_epoch=8, trees=3, forest_samples=500, forest_depth=8,
                       dedis_epochs=1, dedis_features=4, patience=2)

    def with_overrides(self, **values: Any) -> "ExperimentConfig":
        """A copy with the given fields replaced; ``None`` values are ignored (options not given)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def run_settings(self, target: str, inputs: tuple[str, ...]) -> RunSettings:
        """The model, training, preprocessing and baseline settings of this experiment."""
        device = str(resolve_device(self.device))
        model = ModelConfig(inputs=inputs, target=target, latent_channels=self.latent_channels,
                            decoder_features=self.decoder_features, decoder_layers=self.decoder_layers, fusion=self.fusion)
        train = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                            patience=self.patience, seed=self.seed, device=device,
                            max_batches_per_epoch=self.max_batches_per_epoch, progress=self.progress)
        model, train = get_preset(self.preset).apply(model, train, self.overrides)
        init = self.init_from if self.init_from is not None else get_preset(self.preset).resolve(self.overrides).init_from
        preprocess = get_preset(self.preset).preprocess(PreprocessConfig(size=self.size, margin=self.margin), self.overrides)
        forest = ForestConfig(n_estimators=self.trees, samples_per_subject=self.forest_samples,
                              max_depth=self.forest_depth, seed=self.seed, n_jobs=self.forest_jobs)
        dedis = DedisConfig(epochs=self.dedis_epochs, batch_size=self.batch_size, features=self.dedis_features,
                            device=device, seed=self.seed)
        return RunSettings(model=model, train=train, preprocess=preprocess,
                           forest=forest, dedis=dedis, resume=self.resume, init_from=init,
                           ensemble=get_preset(self.preset).ensemble_size(self.overrides))

    @property
    def overrides(self) -> Levers:
        """The levers given explicitly, ``encoder_features`` and ``ensemble`` included: they win over the preset's."""
        given = {name: value for name, value in (("encoder_features", self.encoder_features), ("ensemble", self.ensemble))
                 if value is not None}
        return replace(self.levers, **given)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (paths as strings), recorded in each experiment's folder."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Levers):
                out[name] = get_preset(self.preset).resolve(self.overrides).to_dict()
                continue
            if isinstance(value, tuple):
                value = [str(item) if isinstance(item, Path) else list(item) if isinstance(item, tuple) else item
                         for item in value]
            out[name] = str(value) if isinstance(value, Path) else value
        return out
