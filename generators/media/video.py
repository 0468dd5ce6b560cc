"""Text → video: any diffusers text-to-video pipeline, exported as a playable H.264 MP4.

The pipeline class comes from the model's own `model_index.json` through
`DiffusionPipeline.from_pretrained`, so the classic ModelScope model
(`TextToVideoSDPipeline`, deprecated in diffusers but working) and current
ones (Wan 2.1, LTX-Video) load the same way. Where the pipeline's scheduler
allows it, DPM-Solver++ replaces it: good frames in ~25 steps instead of 50.
VAE slicing decodes one frame at a time (the peak memory of a video decode),
and model CPU offload is used only where a CUDA GPU exists: on a CPU it would
only add copies.

diffusers and imageio come with the `media` extra and are imported only when
a model loads or a video is written.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import secrets
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generators import model_names
from generators.resolve import ResolvedModel, ResolvesModel

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

log = logging.getLogger(__name__)


MAX_FRAMES = 64
MAX_STEPS = 100


def _media_module(name: str) -> Any:
    """Import a module of the `media` extra, or say how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"Video generation needs {name.split('.')[0]}, which is not installed: pip install 'rag-service[media]'"
        ) from exc


@dataclass(frozen=True)
class VideoResult:
    """A generated video and what made it."""

    frames: list[np.ndarray]  # uint8 (H, W, 3)
    fps: int
    seed: int  # the seed used (a random one when none was given)
    steps: int


def _frame_to_uint8(frame: Any) -> np.ndarray:
    """One frame (PIL image or array, HWC or CHW, float in [0, 1] or uint8) as uint8 (H, W, 3)."""
    if hasattr(frame, "convert") and hasattr(frame, "size"):  # a PIL image
        return np.asarray(frame.convert("RGB"), dtype=np.uint8)
    array = np.asarray(frame)
    if array.ndim == 2:
        array = array[:, :, None]
    # Channels first (C, H, W) when the first axis looks like channels and the last does not.
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)
    if array.ndim != 3:
        raise ValueError(f"a video frame must be 2- or 3-dimensional, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array[:, :, :3])


def _to_uint8_frames(video: Any) -> list[np.ndarray]:
    """The first video of a pipeline's `frames` output as a list of uint8 (H, W, 3) arrays.

    Pipelines return a batch of videos as an array (B, F, H, W, C), a tensor
    (B, F, C, H, W) or nested lists of PIL images, depending on the pipeline and
    `output_type`; older diffusers returned one video as a list of arrays.
    """
    if hasattr(video, "detach"):  # a torch tensor
        video = video.detach().float().cpu().numpy()
    if isinstance(video, np.ndarray):
        if video.ndim == 5:
            video = video[0]
        if video.ndim == 3 and video.shape[-1] in (1, 3, 4):
            video = video[None]  # one (H, W, C) frame
        return [_frame_to_uint8(frame) for frame in video]
    video = list(video)
    if video and (isinstance(video[0], (list, tuple)) or (isinstance(video[0], np.ndarray) and video[0].ndim == 4)):
        video = list(video[0])
    return [_frame_to_uint8(frame) for frame in video]


def _use_dpm_solver(pipe: Any) -> bool:
    """Swap the pipeline's scheduler for DPM-Solver++ if its config allows; True when it runs DPM-Solver."""
    from diffusers import DPMSolverMultistepScheduler

    scheduler = pipe.scheduler
    if isinstance(scheduler, DPMSolverMultistepScheduler):
        return True
    # Flow-matching schedulers (LTX-Video) list no compatibles: their models were trained for another sampler.
    compatible = {cls.__name__ for cls in getattr(scheduler, "compatibles", [])}
    if DPMSolverMultistepScheduler.__name__ not in compatible:
        return False
    # from_config carries the model's settings over (beta schedule, prediction type, Wan's flow shift).
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(scheduler.config)
    return True


def _enable_vae_slicing(pipe: Any) -> None:
    """Decode the frames one at a time where the VAE can: a video decode is the peak of memory."""
    vae = getattr(pipe, "vae", None)
    if vae is not None and hasattr(vae, "use_slicing") and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    elif hasattr(pipe, "enable_vae_slicing"):  # diffusers before the VAE took this over
        pipe.enable_vae_slicing()


class TextToVideo(ResolvesModel):
    """Generate a short video from a prompt with a diffusers text-to-video pipeline."""

    role = "text-to-video"

    def __init__(
        self,
        model: str = model_names.VIDEO.name,
        *,
        device: str = "cpu",
        default_steps: int = 25,
        default_frames: int = 16,
        fps: int = 8,
        setting: str | None = None,
    ) -> None:
        self.model_name = model
        self.device = device
        self.default_steps = default_steps
        self.default_frames = default_frames
        self.fps = fps
        self.setting = setting
        self._resolved: ResolvedModel | None = None
        self._pipe: DiffusionPipeline | None = None
        self._load_lock = threading.Lock()
        # A pipeline keeps per-call state (the scheduler's timesteps, offload hooks): one generation at a time.
        self._run_lock = threading.Lock()

    def warm_up(self) -> None:
        with self._load_lock:
            if self._pipe is not None:
                return
            path = str(self.resolved.path)
            diffusers = _media_module("diffusers")
            import torch

            cuda = self.device.startswith("cuda") and torch.cuda.is_available()
            # float16 halves GPU memory; CPUs have no fast float16 kernels.
            dtype = torch.float16 if cuda else torch.float32
            pipe = diffusers.DiffusionPipeline.from_pretrained(path, dtype=dtype)
            if _use_dpm_solver(pipe):
                log.info("Video model %s samples with DPM-Solver++", self.model_name)
            _enable_vae_slicing(pipe)
            if cuda:
                # Only the module that is computing sits on the GPU: a 1.3B-2B video model fits small cards.
                pipe.enable_model_cpu_offload(gpu_id=torch.device(self.device).index or 0, device="cuda")
            else:
                pipe.to(self.device)
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe

    @property
    def pipeline(self) -> DiffusionPipeline:
        self.warm_up()
        assert self._pipe is not None
        return self._pipe

    def unload(self) -> None:
        with self._load_lock:
            self._pipe = None
        if self.device.startswith("cuda"):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def memory_bytes(self) -> int:
        """Bytes of the loaded parameters (0 when unloaded); weights shared between modules count once."""
        pipe = self._pipe
        if pipe is None:
            return 0
        import torch

        seen: set[int] = set()
        total = 0
        for component in pipe.components.values():
            if not isinstance(component, torch.nn.Module):
                continue
            for parameter in component.parameters():
                if parameter.data_ptr() in seen:
                    continue
                seen.add(parameter.data_ptr())
                total += parameter.numel() * parameter.element_size()
        return total

    def run(
        self,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        frames: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        width: int | None = None,
        height: int | None = None,
        seed: int | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> VideoResult:
        """Generate one video; `on_step(step, total)` is called after each denoising step (step counts from 1)."""
        frames = self.default_frames if frames is None else frames
        steps = self.default_steps if steps is None else steps
        if not prompt or not prompt.strip():
            raise ValueError("the prompt is empty")
        if not 1 <= frames <= MAX_FRAMES:
            raise ValueError(f"frames must be between 1 and {MAX_FRAMES}, got {frames}")
        if not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
        for name, size in (("width", width), ("height", height)):
            if size is not None and (size <= 0 or size % 8):
                raise ValueError(f"{name} must be a positive multiple of 8, got {size}")
        if seed is None:
            seed = secrets.randbelow(2**31)

        import torch

        pipe = self.pipeline
        # A CPU generator gives the same noise for a seed whatever device the model runs on.
        generator = torch.Generator("cpu").manual_seed(seed)
        kwargs: dict[str, Any] = {"prompt": prompt, "num_frames": frames, "num_inference_steps": steps,
                                  "generator": generator}
        optional = {"negative_prompt": negative_prompt, "guidance_scale": guidance, "width": width, "height": height}
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        accepted = inspect.signature(pipe.__call__).parameters
        if "output_type" in accepted:
            kwargs["output_type"] = "np"  # floats in [0, 1]: no PIL round trip
        if on_step is not None:
            kwargs.update(_step_callback(accepted, on_step, steps))

        with self._run_lock:  # the pipeline's __call__ already runs without autograd
            output = pipe(**kwargs)
        video = output.frames if hasattr(output, "frames") else output[0]
        return VideoResult(_to_uint8_frames(video), self.fps, seed, steps)


def _step_callback(accepted: Any, on_step: Callable[[int, int], None], total: int) -> dict[str, Any]:
    """The keyword arguments that make a pipeline report each step, in the form it supports."""
    if "callback_on_step_end" in accepted:

        def on_step_end(pipe: Any, index: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
            on_step(index + 1, total)
            return callback_kwargs  # unchanged: the pipeline reads the latents back from it

        return {"callback_on_step_end": on_step_end}
    if "callback" in accepted:
        # The legacy hook (ModelScope's pipeline) passes the step index every `callback_steps` steps.
        return {"callback": lambda index, timestep, latents: on_step(index + 1, total), "callback_steps": 1}
    log.warning("This video pipeline reports no steps: on_step is not called")
    return {}


def _even_frames(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Pad odd sizes by one edge pixel: H.264 in yuv420p needs even width and height."""
    height, width = frames[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    if pad == ((0, 0), (0, 0), (0, 0)):
        return frames
    return [np.pad(frame, pad, mode="edge") for frame in frames]


def write_mp4(result: VideoResult, path: str | Path) -> None:
    """Write an H.264 MP4 (yuv420p, moov atom first) that browsers and players open."""
    if not result.frames:
        raise ValueError("the video has no frames")
    imageio = _media_module("imageio.v2")
    _media_module("imageio_ffmpeg")  # the ffmpeg binary imageio's FFMPEG plugin runs
    writer = imageio.get_writer(
        str(path),
        format="FFMPEG",
        mode="I",
        fps=result.fps,
        codec="libx264",
        pixelformat="yuv420p",
        quality=None,  # imageio's default maps to CRF 25; CRF 18 is visually lossless for x264
        # Frames are made even here; imageio would otherwise rescale to multiples of 16.
        macro_block_size=1,
        output_params=["-crf", "18", "-movflags", "+faststart"],
        ffmpeg_log_level="error",
    )
    try:
        for frame in _even_frames(result.frames):
            writer.append_data(frame)
    finally:
        writer.close()


def mp4_bytes(result: VideoResult) -> bytes:
    """The MP4 as bytes (via a temporary file: the MP4 muxer seeks back to write its index)."""
    with tempfile.TemporaryDirectory(prefix="rag-video-") as folder:
        path = Path(folder) / "video.mp4"
        write_mp4(result, path)
        return path.read_bytes()
