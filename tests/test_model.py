"""The network and its cost behave as the paper says (tests that fail if the model is wrong)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mrsynth.model import LossWeights, ModelConfig, MultiInputSynthesisNet, mean_voxelwise_variance, synthesis_loss
from mrsynth.model.fusion import fuse_max, fuse_mean
from mrsynth.model.spatial_transformer import AffineSpatialTransformer


def tiny_net(**overrides) -> MultiInputSynthesisNet:
    torch.manual_seed(0)
    config = ModelConfig(inputs=("t1", "t2", "dwi"), target="flair", encoder_features=4, latent_channels=4,
                         decoder_features=4, **overrides)
    return MultiInputSynthesisNet(config).eval()


PRESENT = torch.tensor([[True, True, True], [False, True, False], [True, False, True], [False, True, True]])


@pytest.mark.parametrize("use_stn", [False, True])
def test_fused_latent_is_elementwise_max_of_present_latents(use_stn: bool) -> None:
    net = tiny_net(use_spatial_transformer=use_stn)
    images = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        out = net(images, PRESENT)
        for b in range(4):
            own = [net.encoders[c](images[b : b + 1, c : c + 1]) for c in range(3) if PRESENT[b, c]]
            expected = torch.stack(own).amax(dim=0)[0]
            torch.testing.assert_close(out.fused_latent[b], expected, atol=1e-5, rtol=1e-5)


def test_absent_contrast_has_no_influence() -> None:
    net = tiny_net()
    images = torch.rand(4, 3, 16, 16)
    noisy = images.clone()
    noisy[~PRESENT] = torch.randn_like(noisy[~PRESENT]) * 100
    with torch.no_grad():
        a, b = net(images, PRESENT), net(noisy, PRESENT)
    torch.testing.assert_close(a.image, b.image, atol=0, rtol=0)


def test_missing_contrasts_may_differ_within_a_batch() -> None:
    net = tiny_net()
    images = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        batch = net(images, PRESENT).image
        single = torch.cat([net(images[b : b + 1], PRESENT[b : b + 1]).image for b in range(4)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)


def test_sample_without_inputs_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one present"):
        tiny_net()(torch.rand(1, 3, 16, 16), torch.zeros(1, 3, dtype=torch.bool))


def test_shape_is_kept_and_output_non_negative() -> None:
    out = tiny_net()(torch.rand(2, 3, 24, 20), torch.ones(2, 3, dtype=torch.bool))
    assert out.image.shape == (2, 1, 24, 20) and out.fused_latent.shape == (2, 4, 24, 20)
    assert bool((out.image >= 0).all())


def test_fusion_functions() -> None:
    latents = torch.tensor([[1.0, -2.0], [3.0, -5.0], [0.5, 4.0]]).view(3, 2, 1, 1)
    pair_batch, pair_contrast = torch.tensor([0, 0, 1]), torch.tensor([0, 2, 1])
    assert fuse_max(latents, pair_batch, pair_contrast, 2, 3).flatten().tolist() == [3.0, -2.0, 0.5, 4.0]
    assert fuse_mean(latents, pair_batch, 2).flatten().tolist() == [2.0, -3.5, 0.5, 4.0]


def test_spatial_transformer_is_identity_at_initialisation() -> None:
    torch.manual_seed(0)
    stn = AffineSpatialTransformer(latent_channels=3)
    ref, moving = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    theta = stn.predict_affine(ref, moving)
    torch.testing.assert_close(theta, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3))
    torch.testing.assert_close(stn(ref, moving), moving, atol=1e-5, rtol=1e-5)


def _blob(shift_x: float) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 24), torch.linspace(-1, 1, 24), indexing="ij")
    return torch.exp(-((xs - shift_x) ** 2 + (ys - 0.1) ** 2) / 0.08).expand(1, 2, 24, 24).clone()


def test_spatial_transformer_learns_to_undo_a_shift() -> None:
    torch.manual_seed(0)
    stn = AffineSpatialTransformer(latent_channels=2, features=8)
    reference, moving = _blob(-0.15), _blob(0.15)  # the moving latent is shifted 0.3 to the right
    before = F.mse_loss(stn(reference, moving), reference).item()
    optimiser = torch.optim.Adam(stn.parameters(), lr=3e-3)
    for _ in range(200):
        optimiser.zero_grad()
        loss = F.mse_loss(stn(reference, moving), reference)
        loss.backward()
        optimiser.step()
    theta = stn.predict_affine(reference, moving).detach()[0]
    assert loss.item() < 0.1 * before
    assert theta[0, 2].item() == pytest.approx(0.3, abs=0.08)  # sample 0.3 to the right of each output pixel


def test_cost_terms_match_a_hand_computation() -> None:
    net = tiny_net(use_spatial_transformer=False)
    images, target = torch.rand(4, 3, 8, 8), torch.rand(4, 8, 8)
    weights = LossWeights(fused_mae=1.0, latent_variance=2.0, individual_mae=0.5)
    with torch.no_grad():
        out = net(images, PRESENT)
        terms = synthesis_loss(out, target, weights)
        fused_mae = (out.image[:, 0] - target).abs().mean()
        variances, individual = [], []
        for b in range(4):
            present = [c for c in range(3) if PRESENT[b, c]]
            latents = torch.stack([net.encoders[c](images[b : b + 1, c : c + 1])[0] for c in present])
            variances.append(latents.var(dim=0, unbiased=False).mean())
            individual.append(sum((net.decoder(z[None])[0, 0] - target[b]).abs().mean() for z in latents))
        mvv = torch.stack(variances).mean()
        individual_mae = torch.stack(individual).mean()
    torch.testing.assert_close(terms.fused_mae, fused_mae)
    torch.testing.assert_close(terms.latent_variance, mvv, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(terms.individual_mae, individual_mae, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(terms.total, fused_mae + 2.0 * mvv + 0.5 * individual_mae, atol=1e-6, rtol=1e-5)


def test_variance_of_identical_latents_is_zero() -> None:
    z = torch.rand(1, 2, 4, 4).expand(3, 2, 4, 4)
    assert mean_voxelwise_variance(z, torch.zeros(3, dtype=torch.long), 1).item() == pytest.approx(0.0, abs=1e-7)


def test_config_round_trip_and_validation() -> None:
    config = ModelConfig(inputs=("T1", "t2w"), target="FLAIR", fusion="mean")
    assert config.inputs == ("t1", "t2") and config.target == "flair"
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        ModelConfig(inputs=("t1", "t1n"), target="flair")


def test_checkpoints_from_before_decoder_depth_load_strictly() -> None:
    from mrsynth.pretrained import shipped_models
    from mrsynth.training.checkpoint import Checkpoint

    payload = torch.load(shipped_models()["sim-flair"], map_location="cpu", weights_only=True)
    payload["model_config"].pop("decoder_layers", None)  # as written before the option existed
    checkpoint = Checkpoint.from_payload(payload)
    assert checkpoint.model_config.decoder_layers == 2
    MultiInputSynthesisNet(checkpoint.model_config).load_state_dict(checkpoint.state_dict, strict=True)


def test_decoder_depth_sets_the_number_of_densely_connected_layers() -> None:
    for layers in (1, 3):
        net = tiny_net(decoder_layers=layers)
        convs = [name for name, _ in net.decoder.named_children() if name.startswith("conv")]
        assert convs == [f"conv{k}" for k in range(1, layers + 1)]
        assert net.decoder.to_image.in_channels == 4 + layers * 4
        out = net(torch.rand(4, 3, 16, 16), PRESENT)
        assert out.image.shape == (4, 1, 16, 16) and bool((out.image >= 0).all())
