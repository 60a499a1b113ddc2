"""The shared Typer app and option parsers of the ``mrsynth`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mrsynth.contrasts import parse_contrast_list

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Robust multi-input MR image synthesis (Joyce et al., MICCAI 2017) from any subset of contrasts.")


def _contrasts(text: str) -> tuple[str, ...]:
    try:
        return parse_contrast_list(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not HEIGHTxWIDTH, e.g. 128x128") from None
    if height % 4 or width % 4 or height < 4 or width < 4:
        raise typer.BadParameter(f"{text}: both sides must be positive multiples of 4 (two 2x2 poolings)")
    return height, width


def _pairs(values: list[str]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"{value!r} is not CONTRAST=PATH, e.g. t1=t1.nii.gz")
        if name in files:
            raise typer.BadParameter(f"contrast {name} is given twice")
        files[name] = Path(path)
    return files


DataOpt = Annotated[Path, typer.Option("--data", help="Dataset: a CSV manifest (subject,contrast,path) or a folder (BraTS, ISLES 2015, or subjects whose file names name their contrasts).")]
LayoutOpt = Annotated[Optional[str], typer.Option("--layout", help="Force the layout: manifest, brats, isles2015, folder (default: detected).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")]


