"""mrsynth: robust multi-input MR image synthesis from any subset of contrasts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrsynth")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
