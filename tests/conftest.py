"""Shared fixtures: the real scans in ../shared/data, skipped cleanly where absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("MRSYNTH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real multi-contrast scans; skips the test where it is absent."""
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (set MRSYNTH_SHARED_DATA to its folder)")
    return SHARED_DATA
