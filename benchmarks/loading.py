"""Reading one subject's files: parallel threads against one file after another.

    python benchmarks/loading.py [--repeats 4]

Writes three synthetic 240x240x155 ``.nii.gz`` inputs (as ``speed.py`` does), then times
``load_subject`` with ``workers=1`` and with the default, interleaved, and prints the best of
the repetitions and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import SETTINGS, write_volume_inputs  # noqa: E402

from mrsynth.io.subject import load_subject  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args(argv)
    setting = SETTINGS[0]
    with tempfile.TemporaryDirectory(prefix="mrsynth-loading-") as tmp:
        files = write_volume_inputs(Path(tmp), setting, (240, 240, 155), ".nii.gz")
        paths = {"one after another (workers=1)": 1, "parallel threads (default)": None}
        seconds: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.repeats):
            for name, workers in paths.items():
                started = time.perf_counter()
                load_subject(files, setting.inputs, **({} if workers is None else {"workers": workers}))
                seconds[name].append(time.perf_counter() - started)
    for name, values in seconds.items():
        print(f"{name}: best {min(values):.3f} s (all: {', '.join(f'{v:.3f}' for v in values)})")
    sequential, parallel = (min(values) for values in seconds.values())
    print(f"speed-up of the parallel read: {sequential / parallel:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
