"""Text → image: a diffusers text-to-image pipeline behind one typed `run()`.

The default is `stabilityai/sd-turbo`, distilled to draw in one step without
classifier-free guidance (steps 1, guidance 0), which is what makes CPU
generation bearable. Any pipeline `AutoPipelineForText2Image` knows (Stable
Diffusion 1.x/2.x, SDXL, ...) loads the same way; give it more steps and a
guidance above 1 when it is not a distilled model.

Every result carries the seed it was drawn with, so any image can be made again.
"""

from __future__ import annotations

import gc
import io
import math
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generators import model_names
from generators.resolve import ResolvedModel, ResolvesModel

if TYPE_CHECKING:
    from PIL import Image


MAX_IMAGES = 4  # per call: memory grows linearly with the batch
MIN_SIDE, MAX_SIDE = 64, 2048
MAX_STEPS = 100
_SEED_BOUND = 2**31  # seeds stay 31-bit so every client (JS, JSON, int32 columns) can hold them


@dataclass(frozen=True)
class ImageResult:
    images: list[Image.Image]
    seed: int  # the seed used (random when the caller gave none, so any result can be reproduced)
    steps: int
    guidance: float
    width: int
    height: int


def png_bytes(image: Image.Image) -> bytes:
    """The image encoded as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _check_side(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer number of pixels, got {value!r}")
    if not MIN_SIDE <= value <= MAX_SIDE or value % 8:
        # The VAE works on 8× downsampled latents: other sizes cannot be decoded back exactly.
        raise ValueError(f"{name} must be a multiple of 8 between {MIN_SIDE} and {MAX_SIDE}, got {value}")


class TextToImage(ResolvesModel):
    """Draw images from a text prompt with a diffusers pipeline, loaded on first use."""

    role = "text-to-image"

    def __init__(
        self,
        model: str = model_names.IMAGE.name,
        *,
        device: str = "cpu",
        default_steps: int = 1,
        default_guidance: float = 0.0,
        setting: str | None = None,
    ) -> None:
        self.model_name = model
        self.device = device
        self.default_steps = default_steps
        self.default_guidance = default_guidance
        self.setting = setting
        self._resolved: ResolvedModel | None = None
        self._pipeline: Any = None
        self._lock = threading.Lock()  # guards loading and unloading
        # Schedulers keep per-call state (timesteps, step index): one generation at a time per pipeline.
        self._run_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._pipeline is not None

    def warm_up(self) -> None:
        self._loaded_pipeline()

    def _loaded_pipeline(self) -> Any:
        """The pipeline, loaded once however many threads ask at the same time."""
        with self._lock:
            if self._pipeline is not None:
                return self._pipeline
            path = str(self.resolved.path)
            try:
                from diffusers import AutoPipelineForText2Image
            except ImportError as exc:
                raise ImportError(
                    f"text-to-image generation needs diffusers: pip install 'rag-service[media]' ({exc})"
                ) from exc
            import torch

            # Half precision halves GPU memory; CPUs have no fast float16 kernels.
            dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
            # `dtype`, not the deprecated `torch_dtype`, since diffusers 0.42.
            pipeline = AutoPipelineForText2Image.from_pretrained(path, dtype=dtype).to(self.device)
            # A server log is no place for tqdm bars; progress goes through `on_step`.
            pipeline.set_progress_bar_config(disable=True)
            self._pipeline = pipeline
            return pipeline

    def unload(self) -> None:
        """Drop the pipeline to free its memory; the next `run()` loads it again."""
        with self._lock:
            if self._pipeline is None:
                return
            self._pipeline = None
        gc.collect()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def memory_bytes(self) -> int:
        """Bytes held by the loaded weights (parameters and buffers); 0 when not loaded."""
        pipeline = self._pipeline
        if pipeline is None:
            return 0
        import torch

        seen: set[int] = set()  # a tensor shared by two components counts once
        total = 0
        for component in pipeline.components.values():
            if not isinstance(component, torch.nn.Module):
                continue
            for tensor in (*component.parameters(), *component.buffers()):
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    total += tensor.numel() * tensor.element_size()
        return total

    def run(
        self,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        n: int = 1,
        width: int = 512,
        height: int = 512,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> ImageResult:
        """Draw `n` images of `width`×`height`; `on_step(done, total)` follows the denoising steps."""
        steps = self.default_steps if steps is None else steps
        guidance = self.default_guidance if guidance is None else float(guidance)
        # Validate before loading: a bad request must not cost a multi-GB load.
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("the prompt is empty: describe the image to draw")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
            raise ValueError(f"n must be between 1 and {MAX_IMAGES} images, got {n!r}")
        _check_side("width", width)
        _check_side("height", height)
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {steps!r}")
        if not math.isfinite(guidance) or guidance < 0:
            raise ValueError(f"guidance must be a finite number ≥ 0, got {guidance!r}")
        if seed is None:
            seed = secrets.randbelow(_SEED_BOUND)
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise ValueError(f"seed must be an integer between 0 and 2**63 - 1, got {seed!r}")

        # A local reference: an `unload()` during this call frees the memory only once it returns.
        pipeline = self._loaded_pipeline()
        import torch

        # One generator, seeded per call, on the pipeline's device: the same seed draws the same noise.
        device = pipeline.device
        generator = torch.Generator(device="cpu" if device.type == "mps" else device).manual_seed(seed)

        callback = None
        if on_step is not None:

            def callback(pipe: Any, index: int, timestep: Any, tensors: dict) -> dict:
                # Some schedulers (Heun, DPM2) run more timesteps than steps: report what the loop runs.
                on_step(index + 1, getattr(pipe, "num_timesteps", None) or steps)
                return tensors

        with self._run_lock:
            output = pipeline(
                prompt=prompt,
                negative_prompt=negative_prompt or None,
                num_images_per_prompt=n,
                width=width,
                height=height,
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=generator,
                callback_on_step_end=callback,
                output_type="pil",
            )
        return ImageResult(list(output.images), seed, steps, guidance, width, height)
