"""Start a model from another one's weights: pre-training on simulated subjects, then real ones.

Encoders are matched by contrast name, not position, so a model pre-trained on every simulated
contrast can start any model whose inputs are a subset of them; the spatial transformer and the
decoder are shared by all contrasts and copied whole. Contrasts the source never saw keep their
fresh initialisation. A 2D source (no context slices) also starts a 2.5D model: its first
convolution's weights go to the centre slice's channel and the neighbours' weights start at zero,
so the 2.5D model starts out computing exactly what the 2D one did and learns to use the context.
Likewise a decoder with fewer layers starts a deeper one: the extra layers start fresh and the final
1x1 convolution's weights on their outputs at zero, so the deeper decoder starts out as the source's;
a decoder that also reads which inputs were fused (``ModelConfig.decoder_sees_inputs``) starts with
zero weights on those marks unless the source read them too (matched by contrast).
A cross-synthesis model's input decoders (one per input contrast) are matched by contrast like
the encoders; a source without them leaves them fresh.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.errors import CheckpointError
from mrsynth.model import ModelConfig, MultiInputSynthesisNet
from mrsynth.pretrained import PREFIX, resolve_model_path, shipped_models
from mrsynth.training.checkpoint import Checkpoint, load_checkpoint

ARCHITECTURE = ("latent_channels", "encoder_features", "decoder_features")


@dataclass(frozen=True)
class WarmStart:
    """The state dict to start from, and which input contrasts it initialised."""

    state_dict: dict[str, torch.Tensor]
    source: str
    initialised: tuple[str, ...]
    fresh: tuple[str, ...]


def warm_start(source: Checkpoint, target: ModelConfig, seed: int = 0, name: str = "checkpoint") -> WarmStart:
    """A full state dict for a ``target``-shaped network with every weight ``source`` has for it."""
    differing = [f for f in ARCHITECTURE if getattr(source.model_config, f) != getattr(target, f)]
    if differing:
        raise CheckpointError(f"{name}: cannot start from it, its {', '.join(differing)} differ from the model's ("
                              + ", ".join(f"{f}: {getattr(source.model_config, f)} there, {getattr(target, f)} here"
                                          for f in differing) + ")")
    source_context, context = source.model_config.context_slices, target.context_slices
    if source_context not in (0, context):
        raise CheckpointError(f"{name}: cannot start from it, it reads {source_context} neighbouring slice(s) per side and "
                              f"the model {context} (only a 2D source, 0, can start a 2.5D model)")
    if source.model_config.decoder_layers > target.decoder_layers:
        raise CheckpointError(f"{name}: cannot start from it, its decoder has {source.model_config.decoder_layers} layers "
                              f"and the model's {target.decoder_layers} (only a shallower decoder can start a deeper one)")
    if source.model_config.target != target.target:
        raise CheckpointError(f"{name}: it synthesises {source.model_config.target}, the model {target.target}")
    torch.manual_seed(seed)
    state = MultiInputSynthesisNet(target).state_dict()
    for key, value in source.state_dict.items():
        if key.startswith("spatial_transformer.") and key in state and state[key].shape == value.shape:
            state[key] = value.clone()
    _copy_decoder(state, "decoder.", source.state_dict, "decoder.", name, source.model_config, target, sees_inputs=True)
    if source.model_config.decoder_sees_inputs and not target.decoder_sees_inputs:
        warnings.warn(f"{name} decodes with marks of the inputs fused (--decoder-sees-inputs) and this model without: "
                      "its decoder starts without the marks' weights, so it does not start out as the source's", stacklevel=2)
    initialised = []
    for i, contrast in enumerate(target.inputs):
        if contrast not in source.model_config.inputs:
            continue
        j = source.model_config.inputs.index(contrast)
        prefix, source_prefix = f"encoders.{i}.", f"encoders.{j}."
        for key in [k for k in state if k.startswith(prefix)]:
            state[key] = _fit_input_channels(source.state_dict[source_prefix + key[len(prefix):]], state[key], context, name)
        if target.cross_synthesis and source.model_config.cross_synthesis:  # input decoders, matched by contrast too
            _copy_decoder(state, f"input_decoders.{i}.", source.state_dict, f"input_decoders.{j}.", name,
                          source.model_config, target, sees_inputs=False)
        initialised.append(contrast)
    fresh = tuple(c for c in target.inputs if c not in initialised)
    return WarmStart(state, name, tuple(initialised), fresh)


def _copy_decoder(state: dict[str, torch.Tensor], prefix: str, source_state: dict[str, torch.Tensor],
                  source_prefix: str, name: str, source: ModelConfig, target: ModelConfig, sees_inputs: bool) -> None:
    """Copy the decoder at ``source_prefix`` into the one at ``prefix``, weights matched channel by
    channel (:func:`_decoder_channels`): a shallower source's missing layers stay fresh, and the
    weights on channels the source lacks (those layers' outputs, input marks) start at zero."""
    for key in [k for k in state if k.startswith(prefix)]:
        value = source_state.get(source_prefix + key[len(prefix):])
        if value is None:  # a layer the shallower source lacks
            continue
        layer = key[len(prefix):].split(".")[0]
        if key.endswith(".weight") and (layer == "to_image" or layer.startswith("conv")):
            earlier = int(layer[len("conv"):]) - 1 if layer.startswith("conv") else None  # to_image: all
            source_channels = _decoder_channels(source, sees_inputs and source.decoder_sees_inputs,
                                                source.decoder_layers if earlier is None else earlier)
            target_channels = _decoder_channels(target, sees_inputs and target.decoder_sees_inputs,
                                                target.decoder_layers if earlier is None else earlier)
            if value.shape[1] == len(source_channels) and value.shape[0] == state[key].shape[0] \
                    and value.shape[2:] == state[key].shape[2:]:
                state[key] = _fit_decoder_weight(value, state[key], source_channels, target_channels)
                continue
        elif value.shape == state[key].shape:
            state[key] = value.clone()
            continue
        raise CheckpointError(f"{name}: its decoder weight {source_prefix + key[len(prefix):]} of shape "
                              f"{tuple(value.shape)} cannot start one of shape {tuple(state[key].shape)}")


def _decoder_channels(config: ModelConfig, sees_inputs: bool, earlier_layers: int) -> list[str]:
    """Names of the channels a decoder convolution reads, in order: the latent, the input marks
    (``ModelConfig.decoder_sees_inputs``) and the outputs of the ``earlier_layers`` convolutions before it."""
    marks = [f"input {contrast}" for contrast in config.inputs] if sees_inputs else []
    return ([f"latent {i}" for i in range(config.latent_channels)] + marks
            + [f"conv{k} {f}" for k in range(1, earlier_layers + 1) for f in range(config.decoder_features)])


def _fit_decoder_weight(value: torch.Tensor, fresh: torch.Tensor, source_channels: list[str],
                        target_channels: list[str]) -> torch.Tensor:
    """A decoder convolution's weights moved to the target's channel order by name; zero on the channels
    the source does not read, so the target decoder starts out computing what the source's did (unless
    the source reads channels the target lacks: input marks, whose weights are dropped)."""
    fitted = torch.zeros_like(fresh)
    where = {channel: i for i, channel in enumerate(source_channels)}
    for j, channel in enumerate(target_channels):
        if channel in where:
            fitted[:, j] = value[:, where[channel]]
    return fitted


def _fit_input_channels(value: torch.Tensor, fresh: torch.Tensor, context: int, name: str) -> torch.Tensor:
    """``value`` copied; a first-convolution weight of a 2D source (one input channel) inflated to
    ``fresh``'s ``1 + 2 * context`` channels with zeros around the centre slice's."""
    if value.shape == fresh.shape:
        return value.clone()
    if value.dim() == 4 and value.shape[1] == 1 and fresh.shape[1] == 1 + 2 * context and \
            value.shape[:1] + value.shape[2:] == fresh.shape[:1] + fresh.shape[2:]:
        inflated = torch.zeros_like(fresh)
        inflated[:, context] = value[:, 0]
        return inflated
    raise CheckpointError(f"{name}: its encoder weight of shape {tuple(value.shape)} cannot start one of shape {tuple(fresh.shape)}")


def warn_unused_networks(model: str | Path, networks: int, ensemble: int) -> None:
    """Warn when a source of ``networks`` networks starts an ensemble of ``ensemble``: the rest go unused."""
    if networks > ensemble:
        used = "network 1" if ensemble == 1 else f"networks 1-{ensemble}"
        warnings.warn(f"{model} holds {networks} networks and this run trains {ensemble}: it starts from "
                      f"{used} only, not from their average (--ensemble {networks} starts one from each)",
                      stacklevel=3)


def load_warm_start(model: str | Path, target: ModelConfig, seed: int = 0,
                    preprocess: PreprocessConfig | None = None, member: int = 0,
                    ensemble: int | None = None) -> WarmStart:
    """:func:`warm_start` from a checkpoint file, run folder or ``pretrained:NAME``.

    An ensemble source starts ensemble ``member`` k from its network k (cycling when it has fewer),
    so the members of a warm-started ensemble do not all start alike. Given the run's ``ensemble``
    size, member 0 warns when the source holds more networks than the run trains (some go unused).
    With the run's ``preprocess``, warns (once per message) when the source saw its inputs
    scaled otherwise: its encoders then start off-scale and fine-tuning has to adapt them.
    """
    path = resolve_model_path(model)
    checkpoint, _ = load_checkpoint(path)
    networks = [checkpoint.state_dict, *checkpoint.members]
    if ensemble is not None and member == 0:
        warn_unused_networks(model, len(networks), ensemble)
    checkpoint = replace(checkpoint, state_dict=networks[member % len(networks)], members=[])
    name = str(model) if len(networks) == 1 else f"{model} (network {member % len(networks) + 1} of {len(networks)})"
    if preprocess is not None and checkpoint.preprocess:
        source = PreprocessConfig.from_dict(checkpoint.preprocess).describe_normalisation()
        if source != preprocess.describe_normalisation():
            warnings.warn(f"{model} was trained with {source}; this run uses {preprocess.describe_normalisation()}",
                          stacklevel=2)
    return warm_start(checkpoint, target, seed, name=name)


SIMULATOR = "simulator"


def resolve_init(spec: str | Path | None, target: ModelConfig) -> str | None:
    """What a training run starts from: ``None``/``"none"`` scratch; ``"simulator"`` the shipped
    ``pretrained:sim-<target>`` model where one exists and fits the architecture (else scratch);
    anything else is a checkpoint, run folder or ``pretrained:NAME`` taken as given."""
    if spec is None or str(spec) == "none":
        return None
    if str(spec) != SIMULATOR:
        return str(spec)
    name = f"sim-{target.target}"
    if name not in shipped_models():
        return None
    try:
        warm_start(load_checkpoint(shipped_models()[name])[0], target, name=name)
    except CheckpointError as error:  # e.g. another encoder width: that run starts from scratch
        warnings.warn(f"{PREFIX}{name} does not fit this model ({error}): training from scratch", stacklevel=2)
        return None
    return PREFIX + name
