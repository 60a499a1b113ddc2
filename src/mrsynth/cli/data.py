"""Data commands: simulate a cohort, profile intensities, prepare slices for another machine, and the demo (the main job)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mrsynth.cli.app import DataOpt, DeviceOpt, InputNormOpt, LayoutOpt, PresetOpt, _contrasts, _size, app
from mrsynth.errors import MrsynthError


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="Folder for <subject>/<subject>_<contrast>.nii.gz and manifest.csv."),
    subjects: int = typer.Option(20, help="Number of subjects."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives identical volumes."),
    contrasts: str = typer.Option("t1,t1c,t2,pd,flair,dwi", help="Contrasts to simulate."),
    lesions: str = typer.Option("tumour,stroke,ms", help="Lesion types drawn from (empty: healthy subjects)."),
    snr: float = typer.Option(30.0, help="Mean white-matter signal / noise sigma."),
    field_strength: float = typer.Option(3.0, "--field-strength", help="1.5 or 3 (tesla): tissue relaxation times."),
    downsample: int = typer.Option(1, help="Simulate on a coarser grid (2: 2 mm voxels)."),
    tumour_radius: str = typer.Option("10,20", "--tumour-radius", help="Range (mm) of a tumour's radius: LOW,HIGH."),
    oedema_margin: str = typer.Option("8,20", "--oedema-margin", help="Range (mm) of the oedema's reach beyond the tumour: LOW,HIGH."),
    gd_concentration: float = typer.Option(0.2, "--gd-concentration", help="Gadolinium in enhancing tumour (mM) for T1c."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a cohort already simulated in OUT."),
) -> None:
    """Simulate a realistic multi-contrast brain MRI cohort from the MNI152 template (no download)."""
    from mrsynth.data.simulation import SimulationConfig, TumourSize, simulate_cohort

    try:
        size = TumourSize(radius_mm=_range(tumour_radius, "--tumour-radius"), oedema_mm=_range(oedema_margin, "--oedema-margin"))
    except ValueError as error:
        raise MrsynthError(str(error)) from None
    config = SimulationConfig(subjects=subjects, seed=seed, contrasts=_contrasts(contrasts),
                              lesions=tuple(x for x in lesions.split(",") if x.strip()), snr=snr,
                              field_strength=field_strength, downsample=downsample, tumour_size=size,
                              gd_concentration_mm=gd_concentration)
    manifest = simulate_cohort(out, config, overwrite=overwrite)
    typer.echo(f"simulated {subjects} subjects; manifest: {manifest}")


def _range(text: str, option: str) -> tuple[float, float]:
    """``"LOW,HIGH"`` -> (low, high); a clear error for anything else."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{option} takes two numbers LOW,HIGH (mm), e.g. 15,30; got {text!r}") from None
    return low, high


@app.command()
def profile(
    data: DataOpt,
    against: Optional[Path] = typer.Option(None, "--against", help="A second dataset to compare with (e.g. a simulated cohort)."),
    contrasts: Optional[str] = typer.Option(None, "--contrasts", help="Only these contrasts, e.g. t1,flair [default: all]."),
    max_subjects: Optional[int] = typer.Option(None, "--max-subjects", help="Profile only the first N subjects of each dataset."),
    layout: LayoutOpt = None,
) -> None:
    """Intensity profile per contrast (brain-mean units: quantiles, roughness, voxel size); with --against, how alike two cohorts are."""
    from mrsynth.data.profile import profile_dataset, profiles_markdown

    wanted = _contrasts(contrasts) if contrasts else None
    profiles = [(str(data), profile_dataset(data, wanted, layout, max_subjects))]
    if against is not None:
        profiles.append((str(against), profile_dataset(against, wanted, None, max_subjects)))
    typer.echo(profiles_markdown(profiles))


@app.command()
def prepare(
    data: DataOpt,
    inputs: str = typer.Option(..., "--inputs", help="Input contrasts in order, as the runs that use the slices will give them."),
    target: str = typer.Option(..., "--target", help="Contrast to synthesise."),
    out: Path = typer.Option(..., "--out", help="New folder for the slices (meta.json and .npy arrays); give it as --data."),
    size: str = typer.Option("128x128", help="Working slice size HEIGHTxWIDTH, as the runs will use."),
    margin: int = typer.Option(4, help="Voxels of margin around the brain bounding box."),
    preset: PresetOpt = "default",
    input_normalisation: InputNormOpt = None,
    layout: LayoutOpt = None,
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Preprocess a dataset once into a folder of slices that train, evaluate and experiment accept as --data
    (for a machine that cannot see the images)."""
    from mrsynth.data.prepared import write_prepared
    from mrsynth.data.preprocessing import PreprocessConfig
    from mrsynth.io.layouts import discover_dataset
    from mrsynth.training.presets import Levers, get_preset

    try:
        config = get_preset(preset).preprocess(PreprocessConfig(size=_size(size), margin=margin),
                                               Levers(input_normalisation=input_normalisation))
    except ValueError as error:
        raise MrsynthError(str(error)) from None
    index = discover_dataset(data, layout)
    prepared = write_prepared(index, _contrasts(inputs), _contrasts(target)[0], config, out.expanduser(),
                              progress=progress)
    slices = prepared.slice_set
    summary = f"prepared {len(slices.subjects)} subjects, {len(slices.subject)} slices of {size} in {out}"
    left_out = "; ".join(f"{name} ({reason})" for name, reason in prepared.left_out)
    typer.echo(summary + (f"; left out {len(prepared.left_out)}: {left_out}" if left_out else ""))


@app.command()
def demo(
    out: Path = typer.Option(Path("mrsynth-demo"), "--out", help="Folder for everything the demo writes."),
    quick: bool = typer.Option(False, "--quick", help="A one-minute smoke run (tiny cohort, 2 epochs)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (default 12; 2 with --quick)."),
    subjects: Optional[int] = typer.Option(None, help="Simulated subjects (default 10; 4 with --quick)."),
    device: DeviceOpt = "auto",
    seed: int = typer.Option(0, help="Random seed."),
    force: bool = typer.Option(False, "--force", help="Replace a previous demo in OUT."),
    preset: str = typer.Option("paper", "--preset", help="Model recipe: paper (the documented demo numbers) or default."),
) -> None:
    """The main job: simulate, train T1+T2+DWI -> FLAIR, evaluate all 7 input subsets, write table, figure, NIfTI."""
    from mrsynth.demo import DemoConfig, run_demo

    overrides = {k: v for k, v in {"epochs": epochs, "subjects": subjects}.items() if v is not None}
    common = dict(out=out, device=device, seed=seed, force=force, preset=preset, **overrides)
    run_demo(DemoConfig.quick(**common) if quick else DemoConfig(**common), log=typer.echo)
