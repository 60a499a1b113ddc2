"""``python -m mrsynth`` (and ``torchrun -m mrsynth``) runs the command line."""

from mrsynth.cli import run

run()
