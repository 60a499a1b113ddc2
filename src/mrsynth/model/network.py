"""The multi-input synthesis network: encoders -> spatial transformer -> fusion -> decoder."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.func import functional_call

from mrsynth.model.config import ModelConfig
from mrsynth.model.decoder import ShallowDecoder
from mrsynth.model.encoder import UNetEncoder
from mrsynth.model.fusion import fuse, fuse_subsets
from mrsynth.model.spatial_transformer import AffineSpatialTransformer


# the network's parts (its child modules), by name: what training may update (``train_model(trainable=...)``)
PARTS: tuple[str, ...] = ("encoders", "spatial_transformer", "decoder", "input_decoders")


@dataclass
class SynthesisOutput:
    """What one forward pass produces.

    Latents are stored per present (sample, contrast) pair: pair ``p`` belongs to sample
    ``pair_batch[p]`` and input contrast ``pair_contrast[p]``; absent contrasts have no pair.
    """

    image: torch.Tensor  # (B, 1, H, W) synthesised target from the fused latent
    fused_latent: torch.Tensor  # (B, L, H, W)
    aligned_latents: torch.Tensor  # (P, L, H, W)
    pair_batch: torch.Tensor  # (P,)
    pair_contrast: torch.Tensor  # (P,)
    individual_images: torch.Tensor | None  # (P, 1, H, W) each aligned latent decoded on its own
    # (C, B + P, 1, H, W): the fused latents, then each aligned latent, through input contrast c's decoder
    # (only for a model with ModelConfig.cross_synthesis, in training: decode_individual=True)
    input_images: torch.Tensor | None = None
    # (Q, 1, H, W): the latents fused over each proper subset of two or more of a sample's present
    # contrasts, decoded (only in training with decode_subsets=True); subset_batch (Q,) their samples
    subset_images: torch.Tensor | None = None
    subset_batch: torch.Tensor | None = None


@dataclass(frozen=True)
class ExecutionOptions:
    """How (not what) the network computes: every choice gives the same outputs up to float rounding.

    ``channels_last`` runs the convolutions on NHWC activations. ``batched_encoders`` runs the
    encoders of all contrasts as one vmapped call (each convolution becomes one grouped
    convolution over the contrasts) when every sample of the batch has every contrast; otherwise
    each contrast's encoder runs on its present slices only. ``None`` takes the default of the
    device the inputs are on (:meth:`resolve`), chosen by measurement (``benchmarks/speed.py``).
    """

    channels_last: bool | None = None
    batched_encoders: bool | None = None

    def resolve(self, device_type: str) -> "ExecutionOptions":
        """Replace every ``None`` by the default for ``device_type`` ("cpu", "cuda", ...)."""
        # Measured with benchmarks/speed.py (benchmarks/README.md): on CPU (oneDNN) NHWC and the
        # vmapped encoders gave no gain / a 25-30% loss against NCHW and the per-contrast loop, so
        # both stay off there. On CUDA, NHWC is what cuDNN's tensor-core kernels want; the batched
        # encoders stay off until a GPU run of the benchmark shows that they pay.
        defaults = {"channels_last": device_type == "cuda", "batched_encoders": False}
        return ExecutionOptions(**{name: defaults[name] if getattr(self, name) is None else getattr(self, name)
                                   for name in defaults})


class MultiInputSynthesisNet(nn.Module):
    """Synthesise the target contrast from ANY non-empty subset of the input contrasts.

    ``forward(images, present)`` takes ``images`` of shape ``(B, C, H, W)`` (or
    ``(B, C, K, H, W)`` with ``K = 1 + 2 * context_slices`` neighbouring slices) and a boolean
    ``present`` of shape ``(B, C)``. Only present slices are encoded, so an absent contrast's
    tensor has no influence at all, and the set of present contrasts may differ per sample.

    >>> net = MultiInputSynthesisNet(ModelConfig(inputs=("t1", "t2"), target="flair"))
    >>> out = net(torch.rand(2, 2, 32, 32), torch.tensor([[True, False], [True, True]]))
    >>> tuple(out.image.shape)
    (2, 1, 32, 32)
    """

    def __init__(self, config: ModelConfig, execution: ExecutionOptions = ExecutionOptions()):
        super().__init__()
        self.config = config
        self.execution = execution
        self.encoders = nn.ModuleList(
            UNetEncoder(config.channels_per_input, config.encoder_features, config.latent_channels)
            for _ in config.inputs
        )
        self.spatial_transformer = (
            AffineSpatialTransformer(config.latent_channels) if config.use_spatial_transformer else None
        )
        self.decoder = ShallowDecoder(config.decoder_in_channels, config.decoder_features, config.decoder_layers)
        # training-only extra outputs: every input contrast synthesised from the latents (unused at synthesis)
        self.input_decoders = nn.ModuleList(
            ShallowDecoder(config.latent_channels, config.decoder_features, config.decoder_layers) for _ in config.inputs
        ) if config.cross_synthesis else None

    def set_execution(self, **changes: bool | None) -> "MultiInputSynthesisNet":
        """Switch fast paths by name (fields of :class:`ExecutionOptions`); weight values are untouched,
        their memory layout follows ``channels_last`` (see :meth:`place`).

        Call it before an optimiser is made for the weights: moments kept by the optimiser stay in
        the old layout (see :func:`mrsynth.training.optimiser.load_optimiser_state`).
        """
        self.execution = replace(self.execution, **changes)
        return self.place(next(self.parameters()).device)

    def place(self, device: torch.device | str) -> "MultiInputSynthesisNet":
        """Move to ``device``, with the convolution weights in the layout the execution options resolve to there.

        NHWC activations alone are not enough: a 1-channel input slice is both NCHW and NHWC, so
        the first convolution would choose by its weight's layout and everything after it would
        stay NCHW, with cuDNN converting layouts around every convolution.
        """
        device = torch.device(device)
        options = self.execution.resolve(device.type)
        return self.to(device=device, memory_format=torch.channels_last if options.channels_last else torch.contiguous_format)

    def _memory_format(self, x: torch.Tensor, options: ExecutionOptions) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if options.channels_last else x

    def _encode_all(self, images: torch.Tensor) -> torch.Tensor:
        """Every contrast of every sample through its own encoder in one vmapped call: ``(B*C, L, H, W)``.

        The encoders' parameters are stacked (differentiably) along a new contrast axis, so vmap
        turns each convolution into one grouped convolution over all contrasts.
        """
        names = [name for name, _ in self.encoders[0].named_parameters()]
        per_encoder = [dict(encoder.named_parameters()) for encoder in self.encoders]
        stacked = {name: torch.stack([params[name] for params in per_encoder]) for name in names}

        def run(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.encoders[0], params, (x,))

        latents = torch.vmap(run)(stacked, images.transpose(0, 1))  # (C, B, L, H, W)
        return latents.transpose(0, 1).flatten(0, 1)

    def encode(self, images: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode every present slice with its contrast's encoder; returns (latents, pair_batch, pair_contrast)."""
        if images.dim() == 4:
            images = images.unsqueeze(2)
        batch, n_contrasts = images.shape[:2]
        if n_contrasts != len(self.encoders) or present.shape != (batch, n_contrasts):
            raise ValueError(
                f"expected {len(self.encoders)} input contrasts {self.config.inputs} and a present mask of "
                f"shape ({batch}, {len(self.encoders)}); got images {tuple(images.shape)}, present {tuple(present.shape)}"
            )
        present = present.to(device=images.device, dtype=torch.bool)
        if not bool(present.any(dim=1).all()):
            raise ValueError("every sample needs at least one present input contrast")
        pair_batch, pair_contrast = present.nonzero(as_tuple=True)
        options = self.execution.resolve(images.device.type)
        if options.batched_encoders and n_contrasts > 1 and len(pair_batch) == present.numel():
            return self._memory_format(self._encode_all(images), options), pair_batch, pair_contrast
        chunks, order = [], []
        for c, encoder in enumerate(self.encoders):
            rows = (pair_contrast == c).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                continue
            chunks.append(encoder(self._memory_format(images[pair_batch[rows], c], options)))
            order.append(rows)
        latents = torch.cat(chunks)[torch.argsort(torch.cat(order))]
        return latents, pair_batch, pair_contrast

    def align(self, latents: torch.Tensor, pair_batch: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Align every latent to its sample's reference: the first present contrast of the input list."""
        if self.spatial_transformer is None:
            return latents
        counts = torch.bincount(pair_batch, minlength=batch_size)
        first_pair = torch.cumsum(counts, 0) - counts  # pairs are sorted by sample, then contrast
        moving = (torch.arange(len(pair_batch), device=latents.device) != first_pair[pair_batch]).nonzero(as_tuple=True)[0]
        if moving.numel() == 0:
            return latents
        reference = latents[first_pair[pair_batch[moving]]]
        warped = self.spatial_transformer(reference, latents[moving])
        return latents.index_copy(0, moving, warped.to(latents.dtype))

    def decode(self, latents: torch.Tensor, fused_inputs: torch.Tensor | None) -> torch.Tensor:
        """The synthesis decoder on ``latents`` ``(N, L, H, W)``, each the fusion of the inputs marked in
        ``fused_inputs`` ``(N, C)``; with ``decoder_sees_inputs`` those marks are extra constant channels
        (without it they are not read and may be None)."""
        if self.config.decoder_sees_inputs:
            marks = fused_inputs.to(latents.dtype)[:, :, None, None].expand(-1, -1, *latents.shape[-2:])
            latents = torch.cat([latents, marks], dim=1)
        return self.decoder(latents)

    def forward(self, images: torch.Tensor, present: torch.Tensor, decode_individual: bool = True,
                decode_subsets: bool = False) -> SynthesisOutput:
        """Synthesise from the present inputs; in training also each latent decoded alone
        (``decode_individual``) and, with ``decode_subsets``, the fusion of each proper subset of the
        aligned latents (aligned to the sample's first input, not re-aligned per subset)."""
        if decode_subsets and not decode_individual:
            raise ValueError("decode_subsets=True needs decode_individual=True: the subsets are decoded with the single latents")
        batch_size = images.shape[0]
        latents, pair_batch, pair_contrast = self.encode(images, present)
        aligned = self.align(latents, pair_batch, batch_size)
        fused = fuse(self.config.fusion, aligned, pair_batch, pair_contrast, batch_size, len(self.encoders))
        inputs_decoded, subset_images, subset_batch = None, None, None
        n_contrasts = len(self.encoders)
        present = present.to(device=fused.device, dtype=torch.bool)
        if decode_individual:
            every_latent = torch.cat([fused, aligned])
            to_decode = every_latent
            fused_inputs = (torch.cat([present, nn.functional.one_hot(pair_contrast, n_contrasts).bool()])
                            if self.config.decoder_sees_inputs else None)  # marks only for a decoder that reads them
            if decode_subsets:
                subset_latents, subset_batch, subset_inputs = fuse_subsets(self.config.fusion, aligned, pair_batch,
                                                                           pair_contrast, batch_size, n_contrasts)
                to_decode = torch.cat([every_latent, subset_latents])
                if fused_inputs is not None:
                    fused_inputs = torch.cat([fused_inputs, subset_inputs])
            decoded = self.decode(to_decode, fused_inputs)
            image, individual = decoded[:batch_size], decoded[batch_size:len(every_latent)]
            if decode_subsets:
                subset_images = decoded[len(every_latent):]
            if self.input_decoders is not None:
                inputs_decoded = torch.stack([decoder(every_latent) for decoder in self.input_decoders])
        else:
            image, individual = self.decode(fused, present), None
        return SynthesisOutput(image, fused, aligned, pair_batch, pair_contrast, individual, inputs_decoded,
                               subset_images, subset_batch)
