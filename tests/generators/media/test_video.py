"""Text → video on a tiny random-weight ModelScope-style pipeline (plumbing only: the frames are noise)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("imageio_ffmpeg")

from generators.resolve import ModelUnavailableError  # noqa: E402
from generators.media.video import (  # noqa: E402
    TextToVideo,
    VideoResult,
    _to_uint8_frames,
    _use_dpm_solver,
    mp4_bytes,
    write_mp4,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 32  # pixels; the VAE halves it, the UNet halves it once more
FRAMES = 4
STEPS = 2


@pytest.fixture(scope="module")
def tiny_video_dir(tiny_video_model_dir) -> Path:
    return tiny_video_model_dir


@pytest.fixture(scope="module")
def video(tiny_video_dir) -> TextToVideo:
    generator = TextToVideo(str(tiny_video_dir), default_steps=STEPS, default_frames=FRAMES, fps=8)
    generator.warm_up()
    return generator


@pytest.fixture(scope="module")
def clip(video) -> VideoResult:
    return video.run("a red fox running through snow", width=SIZE, height=SIZE, seed=7)


def test_generates_the_asked_frames_with_dpm_solver(video, clip):
    from diffusers import DPMSolverMultistepScheduler

    # The saved model says DDIM; DDIM lists DPM-Solver among its compatibles, so it was swapped.
    assert type(video.pipeline).__name__ == "TextToVideoSDPipeline"
    assert isinstance(video.pipeline.scheduler, DPMSolverMultistepScheduler)
    assert len(clip.frames) == FRAMES
    assert all(f.shape == (SIZE, SIZE, 3) and f.dtype == np.uint8 for f in clip.frames)
    assert (clip.fps, clip.seed, clip.steps) == (8, 7, STEPS)


def test_other_sizes_and_frame_counts(video):
    result = video.run("a boat", frames=3, steps=1, width=48, height=SIZE, seed=1)
    assert len(result.frames) == 3 and result.frames[0].shape == (SIZE, 48, 3) and result.steps == 1


def test_same_seed_gives_identical_frames(video, clip):
    again = video.run("a red fox running through snow", width=SIZE, height=SIZE, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(clip.frames, again.frames, strict=True))
    other = video.run("a red fox running through snow", width=SIZE, height=SIZE, seed=8)
    assert not all(np.array_equal(a, b) for a, b in zip(clip.frames, other.frames, strict=True))


def test_without_a_seed_a_random_one_is_used_and_reported(video):
    first = video.run("waves", frames=2, steps=1, width=SIZE, height=SIZE)
    replay = video.run("waves", frames=2, steps=1, width=SIZE, height=SIZE, seed=first.seed)
    assert isinstance(first.seed, int) and first.seed >= 0
    assert all(np.array_equal(a, b) for a, b in zip(first.frames, replay.frames, strict=True))


def test_on_step_is_called_after_every_denoising_step(video):
    calls: list[tuple[int, int]] = []
    video.run("a kite", frames=2, steps=3, width=SIZE, height=SIZE, seed=0, on_step=lambda s, t: calls.append((s, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_mp4_is_h264_yuv420p_and_reads_back(clip, tmp_path):
    import imageio.v2 as imageio
    import imageio_ffmpeg

    path = tmp_path / "fox.mp4"
    write_mp4(clip, path)
    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        frames = [frame for frame in reader]
    finally:
        reader.close()
    assert len(frames) == FRAMES and frames[0].shape == (SIZE, SIZE, 3)
    stream = imageio_ffmpeg.read_frames(str(path))
    meta = next(stream)
    stream.close()
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p") and meta["size"] == (SIZE, SIZE)
    data = mp4_bytes(clip)
    assert data[4:8] == b"ftyp" and abs(len(data) - path.stat().st_size) < 64


def test_odd_sizes_are_padded_to_even(tmp_path):
    import imageio.v2 as imageio

    rng = np.random.default_rng(0)
    odd = VideoResult([rng.integers(0, 256, (31, 33, 3), dtype=np.uint8) for _ in range(3)], fps=4, seed=0, steps=1)
    path = tmp_path / "odd.mp4"
    write_mp4(odd, path)
    frames = imageio.mimread(str(path), format="FFMPEG")
    assert len(frames) == 3 and frames[0].shape == (32, 34, 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt": ""},
        {"prompt": "   "},
        {"frames": 0},
        {"frames": 65},
        {"steps": 0},
        {"steps": 101},
        {"width": 30},
        {"height": 20},
    ],
)
def test_bad_input_is_a_value_error(kwargs):
    # Validation comes before loading: a model that resolves nowhere is never looked up.
    generator = TextToVideo("/nonexistent/video-model")
    arguments = {"prompt": "a cat", **kwargs}
    with pytest.raises(ValueError):
        generator.run(arguments.pop("prompt"), **arguments)


def test_unload_frees_the_pipeline_and_memory_bytes_counts_parameters(tiny_video_dir):
    generator = TextToVideo(str(tiny_video_dir), default_steps=1, default_frames=1)
    assert generator.memory_bytes() == 0
    generator.warm_up()
    expected = sum(p.numel() * 4 for m in ("unet", "vae", "text_encoder")
                   for p in getattr(generator.pipeline, m).parameters())
    assert generator.memory_bytes() == expected > 0
    generator.unload()
    assert generator.memory_bytes() == 0
    # A run after unload loads again.
    assert len(generator.run("again", width=SIZE, height=SIZE, seed=0).frames) == 1
    assert generator.memory_bytes() == expected


@pytest.mark.parametrize("name", ["/nonexistent/video-model", "nobody/no-such-video-model"])
def test_unresolvable_model_names_the_setting(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    generator = TextToVideo(name, setting="RAG_MEDIA__VIDEO_MODEL")
    with pytest.raises(ModelUnavailableError) as caught:
        generator.warm_up()
    assert caught.value.setting == "RAG_MEDIA__VIDEO_MODEL" and caught.value.role == "text-to-video"
    assert TextToVideo().model_name == "damo-vilab/text-to-video-ms-1.7b"


def test_missing_media_extra_says_how_to_install(tiny_video_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes `import diffusers` raise ImportError
    with pytest.raises(ImportError, match=r"rag-service\[media\]"):
        TextToVideo(str(tiny_video_dir)).warm_up()


def test_incompatible_scheduler_is_kept():
    from types import SimpleNamespace

    from diffusers import FlowMatchEulerDiscreteScheduler

    pipe = SimpleNamespace(scheduler=FlowMatchEulerDiscreteScheduler())
    assert _use_dpm_solver(pipe) is False
    assert isinstance(pipe.scheduler, FlowMatchEulerDiscreteScheduler)


def test_pipeline_outputs_of_every_shape_become_uint8_frames():
    import torch
    from PIL import Image

    floats = np.linspace(0, 1, 2 * 3 * 4 * 6 * 3, dtype=np.float32).reshape(2, 3, 4, 6, 3)  # (B, F, H, W, C)
    from_array = _to_uint8_frames(floats)
    assert len(from_array) == 3 and from_array[0].shape == (4, 6, 3) and from_array[0].dtype == np.uint8
    assert from_array[-1].max() == round(floats[0, -1].max() * 255)
    tensor = torch.from_numpy(floats).permute(0, 1, 4, 2, 3)  # (B, F, C, H, W)
    assert all(np.array_equal(a, b) for a, b in zip(_to_uint8_frames(tensor), from_array, strict=True))
    pil = [[Image.fromarray(frame) for frame in from_array]]  # a batch of lists of PIL images
    assert all(np.array_equal(a, b) for a, b in zip(_to_uint8_frames(pil), from_array, strict=True))
    rgba = [np.dstack([frame, np.full((4, 6), 255, np.uint8)]) for frame in from_array]  # one video, RGBA uint8
    assert all(np.array_equal(a, b) for a, b in zip(_to_uint8_frames(rgba), from_array, strict=True))


def test_importing_the_module_loads_no_media_library():
    code = "import sys, generators.media.video; print(any(m in sys.modules for m in ('diffusers', 'imageio')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "False"
