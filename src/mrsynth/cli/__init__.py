"""The ``mrsynth`` command line: a thin layer over the Python API.

Each module registers its commands on the one Typer ``app``: ``core`` (train, synthesize,
inspect), ``data`` (simulate, demo), ``experiments`` (evaluate, crossval, experiment),
``models`` (shipped checkpoints) and ``qa`` (compare).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import typer

try:  # recent typer ships its own copy of click, whose exceptions are not click's
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # older typer uses click itself
    from click import ClickException
    from click.exceptions import NoArgsIsHelpError

from mrsynth.cli.app import app
from mrsynth.errors import MrsynthError
from mrsynth.training.distributed import torchrun_rank

# importing a command module registers its commands on the app
from mrsynth.cli import core, data, experiments, models, qa  # noqa: E402,F401


_PACKAGE = Path(__file__).resolve().parents[1]
log = logging.getLogger("mrsynth")


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors end with one line on stderr and exit code 2, never a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    with warnings.catch_warnings():  # restores the default display when main returns
        default_display = warnings.showwarning

        def display(message, category, filename, lineno, file=None, line=None) -> None:
            """mrsynth's own warnings as one ``WARNING:`` line like its log, others as Python shows them."""
            path = Path(filename)
            if path.is_absolute() and path.resolve().is_relative_to(_PACKAGE):
                log.warning("%s", message if category is UserWarning else f"{category.__name__}: {message}")
            else:
                default_display(message, category, filename, lineno, file, line)

        warnings.showwarning = display
        level = log.level
        try:
            return _run_app(argv)
        finally:
            log.setLevel(level)


def _run_app(argv: list[str] | None) -> int:
    """The app, with :class:`MrsynthError` and click's errors as one line on stderr (``main`` restores the log level)."""
    try:
        if torchrun_rank() > 0:  # under torchrun rank 0 alone reports warnings; errors still show from every rank
            log.setLevel(logging.ERROR)
        result = app(args=argv, standalone_mode=False)
        return int(result or 0) if isinstance(result, int) else 0
    except MrsynthError as error:
        typer.echo(f"mrsynth: error: {error}", err=True)
        return 2
    except NoArgsIsHelpError as error:  # a bare command: its help on stdout, where users page it
        typer.echo(error.ctx.get_help() if error.ctx is not None else str(error))
        return error.exit_code
    except ClickException as error:
        error.show()
        return error.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
