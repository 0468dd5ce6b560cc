"""How long does one denoising step of `TextToImage` take on CPU? Tiny random pipeline, wall and CPU time.

Plumbing cost only: the pipeline is the tiny random Stable Diffusion the tests
build (UNet 8/16 channels, 8× VAE, 2-layer CLIP), so the numbers say what the
component and diffusers add around the model, and how size and torch threads
scale it, not how fast sd-turbo draws. A step is timed between consecutive
`on_step` callbacks (steps 2..N), so text encoding and VAE decoding are left
out; "s/image" is the whole `run()`. CPU time is `time.process_time()` (all
threads of this process). One untimed run per row first: oneDNN builds its
kernels for each new shape on first use.

    .venv/bin/python bench/image_speed.py [--sizes 64 128] [--threads 1 2] [--steps 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tiny pipeline is local: never ask the Hub


def time_run(model, size: int, steps: int, seed: int) -> tuple[float, float, float]:
    """(wall s/step, CPU s/step, wall s/run) of one `run()`."""
    marks: list[tuple[float, float]] = []
    start = time.perf_counter()
    model.run(
        "a cat", width=size, height=size, steps=steps, seed=seed,
        on_step=lambda step, total: marks.append((time.perf_counter(), time.process_time())),
    )
    total = time.perf_counter() - start
    (wall_first, cpu_first), (wall_last, cpu_last) = marks[0], marks[-1]
    return (wall_last - wall_first) / (len(marks) - 1), (cpu_last - cpu_first) / (len(marks) - 1), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch intra-op threads per row")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: a step is timed between two callbacks")

    import torch

    from generators.media.images import TextToImage
    from tests.tiny_models import build_tiny_text_to_image

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        model = TextToImage(str(build_tiny_text_to_image(Path(folder))))
        model.warm_up()
        for threads in args.threads:
            torch.set_num_threads(threads)
            for size in args.sizes:
                time_run(model, size, args.steps, seed=0)  # untimed: first-use kernel setup
                timings = [time_run(model, size, args.steps, seed=run) for run in range(1, args.runs + 1)]
                wall, cpu, total = (statistics.median(column) for column in zip(*timings))
                rows.append((size, threads, wall, cpu, total))

    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Tiny random SD pipeline, CPU, {args.steps} steps, median of {args.runs} runs; "
          f"{os.cpu_count()} cores, load average {load}; torch {torch.__version__}.\n")
    print("| size | threads | wall ms/step | CPU ms/step | wall ms/image |")
    print("|---|---:|---:|---:|---:|")
    for size, threads, wall, cpu, total in rows:
        print(f"| {size}×{size} | {threads} | {wall * 1000:.1f} | {cpu * 1000:.1f} | {total * 1000:.0f} |")
    print(f"\n    .venv/bin/python bench/image_speed.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
