"""Speed of mrsynth in the paper's two settings: fast paths against the plain eager float32 path.

    python benchmarks/speed.py [--device cpu|cuda] [--quick] [--compile] [--volume-only] [--threads N]

Prints, for BRATS (3 inputs, 128x128) and ISLES (3 inputs, 112x80), training and inference
throughput, FLOPs per slice (torch.utils.flop_counter) and the fraction of the device's peak
(a large matmul measured in the same run), the time to synthesise one 240x240x155 volume from
NIfTI files to the written NIfTI, and the encoders' share of the time (torch.profiler). Every
figure of the default ("fast") settings is shown next to the eager float32 path measured in the
same run, interleaved step by step so that a noisy machine affects both alike; the best of the
timed repetitions counts (warm-up excluded). Results go to benchmarks/results/<date>-<device>.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from mrsynth.data.preprocessing import PreprocessConfig
from mrsynth.data.slices import SliceSet
from mrsynth.inference import Synthesizer
from mrsynth.model import ModelConfig, synthesis_loss
from mrsynth.training.batches import Batch, iterate_batches, prefetch
from mrsynth.training.checkpoint import Checkpoint, save_checkpoint
from mrsynth.training.config import SpeedSettings, TrainConfig
from mrsynth.training.optimiser import make_optimiser
from mrsynth.training.presets import DEFAULT, PAPER
from mrsynth.training.trainer import _autocast, build_model, cudnn_autotuning, train_step

RESULTS = Path(__file__).resolve().parent / "results"
TOP_KERNELS = 15
SYNTHESIS_DEFAULTS = ("fast", "fast + compile", "fast + cudnn autotune")  # in inference these take the Synthesizer's layout default
EAGER = SpeedSettings(channels_last=False, batched_encoders=False, compile=False, prefetch=False, amp=False)


@dataclass(frozen=True)
class Setting:
    """One of the paper's settings: input contrasts, target and working slice size."""

    name: str
    inputs: tuple[str, ...]
    target: str
    size: tuple[int, int]

    def model_config(self) -> ModelConfig:
        return ModelConfig(inputs=self.inputs, target=self.target)


SETTINGS = (Setting("BRATS", ("t1", "t1c", "t2"), "flair", (128, 128)),
            Setting("ISLES", ("t1", "t2", "dwi"), "flair", (112, 80)))


@dataclass(frozen=True)
class Plan:
    """How much to measure: batch sizes, repetitions, volume depth, which variants."""

    batch: int
    infer_batch: int
    warmup: int
    steps: int
    volume_shape: tuple[int, int, int]
    volume_runs: int
    profile_batch: int
    variants: bool
    compile: bool


@dataclass
class Measured:
    """Per-repetition seconds of one path; the best repetition is the figure."""

    seconds: list[float] = field(default_factory=list)

    def best(self) -> float:
        return min(self.seconds)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(runs: dict[str, Callable[[], None]], warmup: int, steps: int, device: torch.device) -> dict[str, Measured]:
    """Time each callable ``steps`` times after ``warmup`` untimed calls, alternating between them."""
    results = {name: Measured() for name in runs}
    for repetition in range(warmup + steps):
        for name, run in runs.items():
            sync(device)
            started = time.perf_counter()
            run()
            sync(device)
            if repetition >= warmup:
                results[name].seconds.append(time.perf_counter() - started)
    return results


def random_slices(setting: Setting, rows: int, seed: int = 0) -> SliceSet:
    """A slice set of smooth-ish positive images with every contrast present."""
    rng = np.random.default_rng(seed)
    h, w = setting.size
    inputs = rng.random((rows, len(setting.inputs), h, w), dtype=np.float32) + 0.5
    return SliceSet(inputs=inputs, present=np.ones((rows, len(setting.inputs)), bool),
                    target=rng.random((rows, h, w), dtype=np.float32) + 0.5, subject=np.zeros(rows, np.int64),
                    slice_index=np.arange(rows), subjects=("s0",), contrasts=setting.inputs)


def endless_batches(slices: SliceSet, batch: int, device: torch.device, speed: SpeedSettings) -> Iterator[Batch]:
    """The trainer's data path (shuffled vectorised gathers, pinned copies, optional prefetch), repeated."""
    epoch = 0
    while True:
        batches = iterate_batches(slices, np.arange(len(slices)), batch, device, np.random.default_rng(epoch))
        yield from (prefetch(batches, device=device) if speed.prefetch else batches)
        epoch += 1


def training_run(setting: Setting, speed: SpeedSettings, device: torch.device, batch: int) -> Callable[[], None]:
    """One training step per call, through the trainer's own data path and step function."""
    torch.manual_seed(0)
    model = build_model(setting.model_config(), speed, device).train()
    config = TrainConfig(device=device.type, learning_rate=1e-4)
    optimiser = make_optimiser(model.parameters(), config, speed)
    batches = endless_batches(random_slices(setting, 4 * batch), batch, device, speed)

    def run() -> None:
        with cudnn_autotuning(speed.cudnn_benchmark):
            train_step(model, optimiser, next(batches), config, device, speed.amp).total.item()
    return run


def inference_run(setting: Setting, speed: SpeedSettings, device: torch.device, batch: int) -> Callable[[], None]:
    """One inference batch per call, as the Synthesizer runs it (inference mode, fused output only)."""
    torch.manual_seed(0)
    model = build_model(setting.model_config(), speed, device).eval()
    images = torch.rand(batch, len(setting.inputs), *setting.size, device=device) + 0.5
    present = torch.ones(batch, len(setting.inputs), dtype=torch.bool, device=device)

    def run() -> None:
        with torch.inference_mode(), _autocast(device, speed.amp), cudnn_autotuning(speed.cudnn_benchmark):
            model(images, present, decode_individual=False).image.float().sum().item()
    return run


def count_flops(setting: Setting, device: torch.device, batch: int = 2) -> tuple[float, float]:
    """FLOPs per slice of the inference forward and of a whole training step (forward + backward)."""
    model = build_model(setting.model_config(), EAGER, device)
    images = torch.rand(batch, len(setting.inputs), *setting.size, device=device)
    present = torch.ones(batch, len(setting.inputs), dtype=torch.bool, device=device)
    target = torch.rand(batch, 1, *setting.size, device=device)
    with FlopCounterMode(display=False) as forward, torch.no_grad():
        model(images, present, decode_individual=False)
    with FlopCounterMode(display=False) as step:
        synthesis_loss(model(images, present), target).total.backward()
    return forward.get_total_flops() / batch, step.get_total_flops() / batch


def peak_runs(device: torch.device, quick: bool) -> dict[str, tuple[Callable[[], None], float]]:
    """Large square matmuls (fp32; on CUDA also bf16): name -> (call, FLOPs per call).

    They are timed interleaved with the model's steps, so that a busy shared machine slows the
    peak as much as the model, and the best repetition counts for both.
    """
    n = 8192 if device.type == "cuda" else (1024 if quick else 2048)
    dtypes = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if device.type == "cuda" else {})}
    runs = {}
    for label, dtype in dtypes.items():
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        runs[f"peak {label}"] = ((lambda a=a, b=b: torch.mm(a, b)), 2.0 * n**3)
    return runs


def encoder_weight_shapes(setting: Setting) -> set[tuple[int, ...]]:
    """Shapes of the encoders' conv weights, also as one grouped conv over the contrasts."""
    model = build_model(setting.model_config(), EAGER, torch.device("cpu"))
    shapes = set()
    for module in model.encoders[0].modules():
        if isinstance(module, torch.nn.Conv2d):
            shape = tuple(module.weight.shape)
            shapes |= {shape, (shape[0] * len(setting.inputs), *shape[1:])}
    return shapes


def conv_shares(setting: Setting, speeds: dict[str, SpeedSettings], device: torch.device,
                batch: int) -> tuple[dict[str, dict[str, float]], list[tuple[str, float, int]]]:
    """Share of profiled time in the encoders' convolutions (forward / backward), other convolutions, the rest.

    ``speeds`` has the paths of the "training step" and of "inference". Also returns the training
    step's most expensive operators or kernels by self time: ``(name, share of the step, calls)``.
    """
    encoder_shapes = encoder_weight_shapes(setting)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    shares = {}
    top: list[tuple[str, float, int]] = []
    for name, make in (("training step", training_run), ("inference", inference_run)):
        run = make(setting, speeds[name], device, batch)
        run()
        sync(device)
        with profile(activities=activities, record_shapes=True) as prof:
            run()
            sync(device)
        events = prof.events()
        cuda = device.type == "cuda"
        # on CUDA the time is the GPU kernels' (and copies'); operators launching them, and the GPU spans
        # of annotated regions such as Optimizer.step, cover kernels already counted
        counted = ((lambda e: e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False))
                   if cuda else (lambda e: True))
        timed = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
        total = sum(timed(e) for e in events if counted(e)) or 1.0
        groups = dict.fromkeys(("encoder convs, forward", "encoder convs, backward", "other convs"), 0.0)
        for event in events:
            backward = event.name == "aten::convolution_backward"
            if event.name != "aten::convolution" and not backward:
                continue
            weight = event.input_shapes[2 if backward else 1] if len(event.input_shapes) > 2 else ()
            inclusive = event.device_time_total if device.type == "cuda" else event.cpu_time_total
            if tuple(weight) in encoder_shapes:
                groups["encoder convs, backward" if backward else "encoder convs, forward"] += inclusive
            else:
                groups["other convs"] += inclusive
        groups["everything else"] = total - sum(groups.values())
        shares[name] = {group: value / total for group, value in groups.items()}
        if name == "training step":
            averages = [e for e in prof.key_averages() if counted(e) and timed(e) > 0]
            averages.sort(key=timed, reverse=True)
            top = [(e.key, timed(e) / total, e.count) for e in averages[:TOP_KERNELS]]
    return shares, top


def write_volume_inputs(folder: Path, setting: Setting, shape: tuple[int, int, int], suffix: str) -> dict[str, Path]:
    """Synthetic 1 mm NIfTI volumes (an ellipsoid brain with texture) for the setting's inputs."""
    rng = np.random.default_rng(0)
    axes = np.meshgrid(*(np.linspace(-1, 1, n, dtype=np.float32) for n in shape), indexing="ij")
    brain = sum((a / r) ** 2 for a, r in zip(axes, (0.75, 0.85, 0.9))) < 1
    files = {}
    for i, contrast in enumerate(setting.inputs):
        data = np.where(brain, 100.0 * (1 + i) + 20 * rng.random(shape, dtype=np.float32), 0).astype(np.float32)
        files[contrast] = folder / f"{contrast}{suffix}"
        nib.save(nib.Nifti1Image(data, np.eye(4)), files[contrast])
    return files


@dataclass(frozen=True)
class VolumeVariant:
    """One way to synthesise the benchmark volume: the model's width and test-time flip, fast paths, slice
    batch, and the files' format (``.nii.gz`` or uncompressed ``.nii``, in and out)."""

    features: int
    test_time_flip: bool
    speed: SpeedSettings
    batch: int
    suffix: str = ".nii.gz"


def volume_runs(setting: Setting, variants: dict[str, VolumeVariant], device: torch.device, plan: Plan,
                folder: Path) -> tuple[dict[str, Measured], dict[str, Measured]]:
    """Files in -> ``Synthesizer.synthesize_files`` -> ``write``: seconds per volume, per variant.

    Also returns, per variant, the seconds of its model part alone (``predict_stack`` on the
    preprocessed slices, host-device copies included); the rest is reading, preprocessing,
    restoring the grid and writing.
    """
    files = {suffix: write_volume_inputs(folder, setting, plan.volume_shape, suffix)
             for suffix in {variant.suffix for variant in variants.values()}}
    runs, model_parts = {}, {}
    for name, variant in variants.items():
        config = replace(setting.model_config(), encoder_features=variant.features, test_time_flip=variant.test_time_flip)
        torch.manual_seed(0)
        fresh = build_model(config, EAGER, torch.device("cpu"))
        checkpoint = Checkpoint(model_config=config, state_dict=fresh.state_dict(),
                                preprocess=PreprocessConfig(size=setting.size).to_dict())
        model_path = save_checkpoint(checkpoint, folder / f"model-{len(runs)}.pt")
        synthesizer = Synthesizer.load(model_path, device=str(device), batch_size=variant.batch)
        for model in synthesizer.models:
            model.set_execution(channels_last=variant.speed.channels_last, batched_encoders=variant.speed.batched_encoders)

        def run(synthesizer: Synthesizer = synthesizer, index: int = len(runs), inputs: dict[str, Path] = files[variant.suffix],
                suffix: str = variant.suffix) -> None:
            result = synthesizer.synthesize_files(inputs)
            synthesizer.write(result, folder / f"out-{index}{suffix}", force=True)
        runs[name] = run
        prepared = synthesizer.synthesize_files(files[variant.suffix]).prepared
        stack = np.stack([prepared.slices[c] for c in setting.inputs], axis=1)
        model_parts[name] = (lambda synthesizer=synthesizer, stack=stack:
                             synthesizer.predict_stack(stack, np.ones(len(setting.inputs), bool)))
    warmup = 1 if plan.volume_runs > 1 else 0
    return (interleaved(runs, warmup=warmup, steps=plan.volume_runs, device=device),
            interleaved(model_parts, warmup=warmup, steps=plan.volume_runs, device=device))


def volume_section(setting: Setting, fast: SpeedSettings, device: torch.device, plan: Plan, tmp: Path,
                   say: Callable[[str], None]) -> None:
    """Time one volume from files to the written NIfTI for the eager path and the fast variants; print the lines."""
    say()
    say(f"## One {'x'.join(map(str, plan.volume_shape))} volume, files to written NIfTI ({setting.name} inputs)")
    folder = tmp / "volume"
    folder.mkdir()
    default_batch = Synthesizer.default_batch_size(device)
    other_batch = 256 if device.type == "cuda" else 64
    preset_model, _ = DEFAULT.apply(setting.model_config(), TrainConfig())
    paper_width = PAPER.levers.encoder_features
    variants = {f"eager, paper preset (width {paper_width})": VolumeVariant(paper_width, False, EAGER, default_batch),
                f"fast, paper preset (width {paper_width})": VolumeVariant(paper_width, False, fast, default_batch),
                f"fast, paper preset, {other_batch}-slice batches": VolumeVariant(paper_width, False, fast, other_batch),
                "fast, paper preset, uncompressed .nii in and out": VolumeVariant(paper_width, False, fast, default_batch, ".nii"),
                f"fast, default preset (width {preset_model.encoder_features}, test-time flip "
                f"{'on' if preset_model.test_time_flip else 'off'})":
                    VolumeVariant(preset_model.encoder_features, preset_model.test_time_flip, fast, default_batch),
                f"fast, default preset, {other_batch}-slice batches":
                    VolumeVariant(preset_model.encoder_features, preset_model.test_time_flip, fast, other_batch)}
    if describe(fast, device) == describe(EAGER, device):
        say("(`fast` is `eager` on this device: measured once)")
        variants.pop(f"fast, paper preset (width {paper_width})")
    volumes, model_parts = volume_runs(setting, variants, device, plan, folder)
    eager_s = next(iter(volumes.values())).best()
    for label, variant in variants.items():
        seconds = volumes[label].best()
        say(f"- {label}, Synthesizer batch_size {variant.batch}: {seconds:.3f} s (x eager speed {eager_s / seconds:.2f}); "
            f"model part alone (predict_stack) {model_parts[label].best():.3f} s")
    if device.type == "cuda":
        say("  (the Synthesizer always uses bf16 autocast on CUDA: `eager` differs from `fast` by the model's options only)")


def describe(speed: SpeedSettings, device: torch.device) -> str:
    from mrsynth.model.network import ExecutionOptions

    execution = ExecutionOptions(speed.channels_last, speed.batched_encoders).resolve(device.type)
    on = [name for name, value in (("channels_last", execution.channels_last), ("batched_encoders", execution.batched_encoders),
                                   ("compile", speed.compile), ("prefetch", speed.prefetch), ("bf16 autocast", speed.amp),
                                   ("fused Adam", speed.fused_optimiser), ("cudnn autotune", speed.cudnn_benchmark)) if value]
    return ", ".join(on) or "nothing (= eager fp32)"


def make_plan(args: argparse.Namespace, device: torch.device) -> Plan:
    """Sizes and repetitions: the paper's batch on the device's scale; ``--compile`` warms up twice (compiling)."""
    cuda = device.type == "cuda"
    if args.compile:
        return replace(make_plan(argparse.Namespace(**{**vars(args), "compile": False}), device), compile=True,
                       warmup=2 if not cuda else 3)
    if args.quick:
        return Plan(batch=8, infer_batch=8, warmup=0 if device.type == "cpu" else 1, steps=2, volume_shape=(240, 240, 48), volume_runs=1,
                    profile_batch=4, variants=False, compile=args.compile)
    # CPU: no warm-up call (the best of the timed steps counts, and a first step costs little extra there)
    return Plan(batch=32, infer_batch=64 if cuda else 32, warmup=3 if cuda else 0, steps=20 if cuda else 2,
                volume_shape=(240, 240, 155), volume_runs=3 if cuda else 1, profile_batch=32 if cuda else 8,
                variants=True, compile=args.compile)


def variant_paths(fast: SpeedSettings, plan: Plan, device: torch.device) -> dict[str, SpeedSettings]:
    """eager, fast (the defaults) and, in a full run, each fast path alone."""
    paths = {"eager": EAGER, "fast": fast}
    if plan.variants:
        paths["channels_last only"] = replace(EAGER, channels_last=True)
        paths["batched_encoders only"] = replace(EAGER, batched_encoders=True)
        if device.type == "cuda":
            paths["bf16 autocast only"] = replace(EAGER, amp=True)
            paths["fused Adam only"] = replace(EAGER, fused_optimiser=True)
            paths["cudnn autotune only"] = replace(EAGER, cudnn_benchmark=True)
            paths["fast + cudnn autotune"] = replace(fast, cudnn_benchmark=True)
            paths["fast + channels_last"] = replace(fast, channels_last=True)
    if plan.compile:
        paths["compile only"] = replace(EAGER, compile=True)
        paths["fast + compile"] = replace(fast, compile=True)
    return paths


def unique(paths: dict[str, SpeedSettings], device: torch.device) -> tuple[dict[str, SpeedSettings], dict[str, str]]:
    """Drop paths whose resolved settings equal an earlier one; map each dropped name to its twin."""
    kept: dict[str, SpeedSettings] = {}
    alias: dict[str, str] = {}
    for name, speed in paths.items():
        twin = next((k for k, v in kept.items() if describe(v, device) == describe(speed, device)), None)
        if twin is None:
            kept[name] = speed
        else:
            alias[name] = twin
    return kept, alias


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="batch 8, one timed step, a 48-slice volume (< 1 min on CPU)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (compile time excluded)")
    volume = parser.add_mutually_exclusive_group()
    volume.add_argument("--volume-only", action="store_true", help="only the whole-volume timings")
    volume.add_argument("--no-volume", action="store_true", help="skip the whole-volume timings")
    parser.add_argument("--batch", type=int, default=None, help="training, inference and profiling batch (default: the plan's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/<date>-<device>.md)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    plan = make_plan(args, device)
    if args.batch:
        plan = replace(plan, batch=args.batch, infer_batch=args.batch, profile_batch=args.batch)
    fast = TrainConfig(device=device.type).resolve_speed(device.type)
    # synthesis keeps the device's layout default (NHWC on CUDA), which training does not use
    synthesis_fast = replace(fast, channels_last=None)
    requested = variant_paths(fast, plan, device)
    paths, alias = unique(requested, device)
    started = time.perf_counter()
    load_before = os.getloadavg()
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    say(f"# mrsynth speed, {device.type} ({name}), {date.today().isoformat()}")
    say()
    say(f"Command: `{' '.join(shlex.quote(a) for a in ['python', *sys.argv])}`  ")
    say(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, load average at start {load_before[0]:.2f}  ")
    say(f"Plan: train batch {plan.batch}, inference batch {plan.infer_batch}, warm-up {plan.warmup}, "
        f"timed {plan.steps} (best counts), volume {'x'.join(map(str, plan.volume_shape))} x{plan.volume_runs}  ")
    say(f"Fast path (the defaults on {device.type}): training {describe(fast, device)}; "
        f"inference and synthesis {describe(synthesis_fast, device)}  ")
    for dropped, twin in alias.items():
        say(f"`{dropped}` has the same settings as `{twin}` on this device: measured once.  ")
    peaks = peak_runs(device, args.quick)

    def measure(runs: dict[str, Callable[[], None]]) -> tuple[dict[str, Measured], dict[str, float]]:
        """Time the runs and the peak matmuls interleaved; returns the timings and the peak FLOP/s."""
        measured = interleaved({**runs, **{k: call for k, (call, _) in peaks.items()}}, plan.warmup, plan.steps, device)
        return measured, {k.split()[1]: flops / measured[k].best() for k, (_, flops) in peaks.items()}

    def ratio_table(title: str, names: list[str], measured: dict[str, Measured], peak: dict[str, float],
                    per_call: int, flops: float) -> None:
        eager = per_call / measured["eager"].best()
        say()
        say(f"| {title} | slices/s | x eager | GFLOP/s | of peak |")
        say("|---|---:|---:|---:|---:|")
        for path in names:
            rate = per_call / measured[alias.get(path, path)].best()
            kind = "bf16" if requested[path].amp and "bf16" in peak else "fp32"
            say(f"| {path} | {rate:.2f} | {rate / eager:.2f} | {rate * flops / 1e9:.1f} | {rate * flops / peak[kind]:.1%} {kind} |")
        say("peak matmul in the same interleaving: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peak.items()))
        if per_call / measured["eager"].best() * flops > peak["fp32"]:
            say("(above 100%: this BLAS's matmul is slower than the convolution library, e.g. MKL sgemm on AMD "
                "against oneDNN, so the matmul underestimates the peak)")

    with tempfile.TemporaryDirectory(prefix="mrsynth-speed-") as tmp:
        for setting in () if args.volume_only else SETTINGS:
            say()
            say(f"## {setting.name}: inputs {', '.join(setting.inputs)} -> {setting.target}, "
                f"{setting.size[0]}x{setting.size[1]}, batch {plan.batch}")
            fwd, step = count_flops(setting, device)
            say(f"FLOPs per slice: forward (inference) {fwd / 1e9:.2f} G, training step {step / 1e9:.2f} G")
            names = list(requested) if setting is SETTINGS[0] else ["eager", "fast"]
            chosen = {k: v for k, v in paths.items() if k in names}
            train, train_peak = measure({k: training_run(setting, v, device, plan.batch) for k, v in chosen.items()})
            infer, infer_peak = measure({k: inference_run(setting, replace(v, channels_last=None) if k in SYNTHESIS_DEFAULTS else v,
                                                          device, plan.infer_batch) for k, v in chosen.items()})
            ratio_table("training", names, train, train_peak, plan.batch, step)
            ratio_table("inference", names, infer, infer_peak, plan.infer_batch, fwd)
        setting = SETTINGS[0]
        if not args.no_volume:
            volume_section(setting, synthesis_fast, device, plan, Path(tmp), say)
        if not args.volume_only:
            say()
            say(f"## Time shares, {setting.name}, fast path, batch {plan.profile_batch} (torch.profiler)")
            shares, top = conv_shares(setting, {"training step": fast, "inference": synthesis_fast}, device,
                                      plan.profile_batch)
            say()
            say("| part | " + " | ".join(shares) + " |")
            say("|---|" + "---:|" * len(shares))
            for group in next(iter(shares.values())):
                say(f"| {group} | " + " | ".join(f"{values[group]:.1%}" for values in shares.values()) + " |")
            say()
            say(f"Training step, top {len(top)} by self {'GPU kernel' if device.type == 'cuda' else 'CPU'} time:")
            say()
            say("| operator / kernel | share | calls |")
            say("|---|---:|---:|")
            for key, share, calls in top:
                say(f"| `{key[:90]}` | {share:.1%} | {calls} |")
    say()
    say(f"Total {time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()[0]:.2f}.")
    slug = "cpu" if device.type == "cpu" else "cuda-" + name.lower().replace(" ", "-")
    out = args.out or RESULTS / f"{date.today().isoformat()}-{slug}{'-quick' * args.quick}{'-compile' * args.compile}{'-volume' * args.volume_only}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
