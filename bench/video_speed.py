"""How fast is text → video on this CPU? Seconds per video frame and per denoising step.

Runs `generators.media.video.TextToVideo` on the tiny random-weight ModelScope-style
pipeline the tests build (tests/tiny_models.py), so it measures the
plumbing around the model (scheduler, VAE decode, frame conversion, MP4
export) and how it scales with size and frame count, not a real model's speed.
Each row is the best of `--repeat` runs, after one warm-up run; CPU seconds
are `time.process_time` of this process (all its threads), wall seconds
`time.perf_counter`.

    .venv/bin/python bench/video_speed.py [--sizes 32 64] [--frames 4 8] [--steps 4] [--threads 1] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="square frame sizes (multiples of 8)")
    parser.add_argument("--frames", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import torch

    from generators.media.video import TextToVideo, mp4_bytes
    from tests.tiny_models import build_tiny_text_to_video

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="video-bench-") as folder:
        generator = TextToVideo(str(build_tiny_text_to_video(Path(folder))))
        _, load_wall, load_cpu = timed(generator.warm_up)
        generator.run("warm up", frames=2, steps=1, width=args.sizes[0], height=args.sizes[0], seed=0)

        rows = []
        for size in args.sizes:
            for frames in args.frames:
                best = None
                for _ in range(args.repeat):
                    result, wall, cpu = timed(lambda: generator.run(
                        "a red fox running through snow", frames=frames, steps=args.steps, width=size, height=size,
                        seed=0,
                    ))
                    _, mp4_wall, _ = timed(lambda: mp4_bytes(result))
                    assert len(result.frames) == frames and result.frames[0].shape == (size, size, 3)
                    if best is None or wall < best[0]:
                        best = (wall, cpu, mp4_wall)
                wall, cpu, mp4_wall = best
                rows.append((size, frames, args.steps, wall, cpu, wall / frames, cpu / frames,
                             wall / args.steps, cpu / args.steps, mp4_wall))

    command = "    .venv/bin/python bench/video_speed.py " + " ".join(sys.argv[1:])
    print(f"Tiny random ModelScope-style pipeline ({generator.memory_bytes() / 1e6:.2f} MB of float32 parameters), "
          f"DPM-Solver++, {args.threads} torch thread(s), {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; load {load_wall:.2f} s wall / {load_cpu:.2f} s CPU; "
          f"best of {args.repeat}.\n")
    print("| size | frames | steps | wall s | CPU s | wall s/frame | CPU s/frame | wall s/step | CPU s/step | MP4 s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, frames, steps, wall, cpu, wall_f, cpu_f, wall_s, cpu_s, mp4_wall in rows:
        print(f"| {size}x{size} | {frames} | {steps} | {wall:.3f} | {cpu:.3f} | {wall_f:.4f} | {cpu_f:.4f} "
              f"| {wall_s:.4f} | {cpu_s:.4f} | {mp4_wall:.3f} |")
    print(f"\n{command.rstrip()}")


if __name__ == "__main__":
    main()
