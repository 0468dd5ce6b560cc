"""Image captioning, with a per-word attention heat map of where the model looked.

transformers 5 has no `image-to-text` pipeline any more, so captioning goes
through `AutoProcessor` and the model's own `generate` (greedy: the same image
always gets the same caption). GIT and BLIP are the supported captioners;
they differ only in how a prompt is fed and where the text→image attention
lives, which `_Git` and `_Blip` hide.

Chat vision-language models (LLaVA, SmolVLM/Idefics3, Qwen2-VL...: any model
`AutoModelForImageTextToText` loads whose processor has a chat template) answer
a question about the image (`ask`): the question goes into the model's chat
template after the image, and only the answer's tokens are decoded. Asked
nothing, they describe the image. They have no heat map.

The heat map teacher-forces the caption and reads the text→image attention:
for each word, the rows of the positions that *predicted* its sub-word tokens
(the hidden state at t-1 is the one choosing token t, so that is where the
model looked while writing it), averaged over heads and the last layers, the
CLS column dropped, reshaped to the patch grid and upsampled onto the part of
the image the processor kept (a centre crop keeps only the middle).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from generators import model_names
from generators.resolve import ResolvedModel, ResolvesModel

if TYPE_CHECKING:
    import torch
    from PIL import Image as PILImage
    from transformers import PreTrainedModel, ProcessorMixin

    ImageInput = Union[PILImage.Image, bytes, bytearray, memoryview, str, Path]


# Layers of the text model whose attention the heat map averages: the last ones tie words to regions best.
HEAT_LAST_LAYERS = 3
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?)(?P<b64>;base64)?,", re.IGNORECASE)


@dataclass(frozen=True)
class CaptionResult:
    text: str
    words: list[str]  # the caption's words, in order (for the heat map)


@dataclass(frozen=True)
class WordHeat:
    word: str
    heat: np.ndarray  # (H, W) in [0, 1], the image's size: where the model looked while writing this word


def load_image(image: ImageInput) -> PILImage.Image:
    """An RGB PIL image from a PIL image, bytes, a path or a `data:image/...;base64,` URL."""
    from PIL import Image, ImageOps

    if isinstance(image, Image.Image):
        picture = image
    else:
        if isinstance(image, str) and image[:5].lower() == "data:":
            data = _data_url_bytes(image)
        elif isinstance(image, (bytes, bytearray, memoryview)):
            data = bytes(image)
        else:
            path = Path(image).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"no image file at {path}")
            data = path.read_bytes()
        try:
            picture = Image.open(io.BytesIO(data))
            picture.load()  # `open` is lazy: a truncated file only fails here
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise ValueError(f"the image could not be decoded ({len(data)} bytes): {exc}") from exc
    # Phone photos store their rotation in EXIF; the model should see them upright.
    picture = ImageOps.exif_transpose(picture)
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        # Transparent pixels have arbitrary colour underneath: show them as white, as a viewer would.
        rgba = picture.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return picture.convert("RGB")


def _data_url_bytes(url: str) -> bytes:
    match = _DATA_URL.match(url)
    if match is None:
        raise ValueError("malformed data URL: expected 'data:image/<type>;base64,<data>'")
    payload = url[match.end():]
    if not match.group("b64"):
        from urllib.parse import unquote_to_bytes

        return unquote_to_bytes(payload)
    try:
        return base64.b64decode(re.sub(r"\s+", "", payload), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the data URL's base64 payload is invalid: {exc}") from exc


def _pair(value: Any) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (list, tuple)) else (int(value), int(value))


def _patch_grid(vision_config: Any) -> tuple[int, int]:
    """Rows and columns of image patches: the ViT's tokens after its CLS token."""
    (image_h, image_w), (patch_h, patch_w) = _pair(vision_config.image_size), _pair(vision_config.patch_size)
    return image_h // patch_h, image_w // patch_w


class _Git:
    """GIT: one decoder over [image tokens; text tokens]; a prompt is text after the BOS token."""

    answers_questions = False  # a captioner: it describes, whatever is asked

    @staticmethod
    def start_token(config: Any) -> int:
        return config.bos_token_id

    @staticmethod
    def generate(model: PreTrainedModel, pixels: torch.Tensor, prefix: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        out = model.generate(pixel_values=pixels, input_ids=prefix, attention_mask=prefix.new_ones(prefix.shape),
                             max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        return out[0, prefix.shape[1]:]

    @staticmethod
    def image_attention(model: PreTrainedModel, pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(layers, heads, text positions, image tokens incl. CLS)."""
        import torch

        grid_h, grid_w = _patch_grid(model.config.vision_config)
        image_tokens = grid_h * grid_w + 1  # the vision encoder's CLS comes first
        out = model(input_ids=ids, pixel_values=pixels, output_attentions=True, use_cache=False)
        attention = torch.stack(out.attentions)[:, 0]
        return attention[:, :, image_tokens:, :image_tokens]


class _Blip:
    """BLIP: a text decoder cross-attending to the vision encoder; its `generate` drops the last prompt token."""

    answers_questions = False

    @staticmethod
    def start_token(config: Any) -> int:
        return config.text_config.bos_token_id

    @staticmethod
    def generate(model: PreTrainedModel, pixels: torch.Tensor, prefix: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        import torch

        # BLIP's generate strips a trailing [SEP] the processor would have added; give it one to strip.
        sep = prefix.new_full((1, 1), model.config.text_config.sep_token_id)
        ids = torch.cat([prefix, sep], dim=1)
        out = model.generate(pixel_values=pixels, input_ids=ids, attention_mask=ids.new_ones(ids.shape),
                             max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        return out[0, prefix.shape[1]:]

    @staticmethod
    def image_attention(model: PreTrainedModel, pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(layers, heads, text positions, image tokens incl. CLS)."""
        import torch

        # The top-level forward does not return the decoder's cross-attentions: call the two halves.
        image_embeds = model.vision_model(pixel_values=pixels).last_hidden_state
        out = model.text_decoder(input_ids=ids, attention_mask=ids.new_ones(ids.shape),
                                 encoder_hidden_states=image_embeds, output_attentions=True, use_cache=False)
        return torch.stack(out.cross_attentions)[:, 0]


class _Chat:
    """A chat vision-language model: the image and a question in its chat template, answered by `generate`."""

    answers_questions = True


Architecture = Union[type[_Git], type[_Blip], type[_Chat]]
# Captioners by `config.model_type`; any other model whose processor has a chat template is a `_Chat`.
_ARCHITECTURES: dict[str, Architecture] = {"git": _Git, "blip": _Blip}
# What a chat model is asked when nothing is: a caption, as GIT and BLIP would write.
DESCRIBE_QUESTION = "Describe this image in one sentence."


def _chat_template(processor: Any) -> Any:
    """The processor's chat template, else its tokenizer's; None for a plain captioner."""
    return getattr(processor, "chat_template", None) or getattr(getattr(processor, "tokenizer", None),
                                                                "chat_template", None)


def _architecture(model_type: str, processor: Any) -> Architecture | None:
    chat = _Chat if _chat_template(processor) and hasattr(processor, "image_processor") else None
    return _ARCHITECTURES.get(model_type, chat)


def _chat_prompt(processor: Any, question: str) -> str:
    """One user turn (the image, then the question) in the model's chat template, ending where the answer starts."""
    image_token = getattr(processor, "image_token", None)
    if image_token:
        question = question.replace(image_token, " ")  # a typed image token would ask for a second image
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    # A processor without a template of its own uses its tokenizer's.
    own = {} if getattr(processor, "chat_template", None) else {"chat_template": _chat_template(processor)}
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **own)


def _input_box(image_processor: Any, height: int, width: int) -> tuple[float, float, float, float]:
    """(top, left, bottom, right) of the original image the model sees: all of it unless centre-cropped."""
    crop = getattr(image_processor, "crop_size", None)
    if not getattr(image_processor, "do_center_crop", False) or not crop or not crop.get("height"):
        return 0.0, 0.0, float(height), float(width)
    size = getattr(image_processor, "size", None) or {}
    scale_y = scale_x = 1.0
    if getattr(image_processor, "do_resize", False) and size.get("shortest_edge"):
        scale_y = scale_x = size["shortest_edge"] / min(height, width)
    elif getattr(image_processor, "do_resize", False) and size.get("height") and size.get("width"):
        scale_y, scale_x = size["height"] / height, size["width"] / width
    box_h, box_w = min(crop["height"] / scale_y, height), min(crop["width"] / scale_x, width)
    top, left = (height - box_h) / 2, (width - box_w) / 2
    return top, left, top + box_h, left + box_w


class ImageCaptioner(ResolvesModel):
    """Caption an image with a GIT or BLIP model, and show where it looked for each word; or, with a chat
    vision-language model (LLaVA, SmolVLM, Qwen2-VL...), answer a question about it (`ask`)."""

    role = "image captioning"

    def __init__(
        self,
        model: str = model_names.CAPTION.name,
        *,
        device: str = "cpu",
        max_new_tokens: int = 30,
        setting: str | None = None,
    ) -> None:
        self.model_name = model
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.setting = setting
        self._resolved: ResolvedModel | None = None
        self._model: PreTrainedModel | None = None
        self._processor: ProcessorMixin | None = None
        self._architecture: Architecture | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

            path = str(self.resolved.path)
            model_type = AutoConfig.from_pretrained(path).model_type
            processor = AutoProcessor.from_pretrained(path)
            architecture = _architecture(model_type, processor)
            if architecture is None:
                raise ValueError(f"the caption model {self.model_name!r} is a {model_type!r} model; supported: "
                                 f"{', '.join(sorted(_ARCHITECTURES))}, or a chat vision-language model "
                                 "(a processor with a chat template: LLaVA, SmolVLM, Qwen2-VL...)")
            dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
            model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(self.device)
            model.eval()
            self._processor, self._architecture, self._model = processor, architecture, model

    def unload(self) -> None:
        with self._lock:
            on_cuda = self._model is not None and self.device.startswith("cuda")
            self._model = self._processor = self._architecture = None
        if on_cuda:
            import torch

            torch.cuda.empty_cache()

    def memory_bytes(self) -> int:
        model = self._model
        if model is None:
            return 0
        return sum(p.numel() * p.element_size() for p in model.parameters())

    @property
    def answers_questions(self) -> bool:
        """True for a chat vision-language model (`ask` answers), False for a captioner (`ask` describes).

        Loads the model (and its processor) if it is not loaded yet."""
        return self._loaded()[2].answers_questions

    def _loaded(self) -> tuple[PreTrainedModel, ProcessorMixin, Architecture]:
        self.warm_up()
        model, processor, architecture = self._model, self._processor, self._architecture
        if model is None or processor is None or architecture is None:
            raise RuntimeError("the captioner was unloaded while in use")
        return model, processor, architecture

    def _pixels(self, model: PreTrainedModel, processor: ProcessorMixin, picture: PILImage.Image) -> torch.Tensor:
        pixels = processor.image_processor(images=picture, return_tensors="pt")["pixel_values"]
        return pixels.to(self.device, dtype=model.dtype)

    def _ids(self, model: PreTrainedModel, processor: ProcessorMixin, architecture: Any, text: str) -> torch.Tensor:
        """[start token] + the text's tokens, without the [SEP] a tokenizer adds (the model would stop there)."""
        import torch

        tokens = processor.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        return torch.tensor([[architecture.start_token(model.config), *tokens]], device=self.device)

    def run(self, image: ImageInput, *, prompt: str | None = None, max_new_tokens: int | None = None) -> CaptionResult:
        """The caption of `image` (greedy); with a prompt, the words that follow it (the prompt not repeated).

        A chat model is asked `DESCRIBE_QUESTION`, or the prompt if there is one (see `ask`)."""
        import torch

        model, processor, architecture = self._loaded()
        picture = load_image(image)
        if architecture.answers_questions:
            return self._answer(model, processor, picture, (prompt or "").strip() or DESCRIBE_QUESTION,
                                max_new_tokens or self.max_new_tokens)
        with torch.inference_mode():
            pixels = self._pixels(model, processor, picture)
            prefix = self._ids(model, processor, architecture, (prompt or "").strip())
            new_ids = architecture.generate(model, pixels, prefix, max_new_tokens or self.max_new_tokens)
        text = processor.tokenizer.decode(new_ids.tolist(), skip_special_tokens=True).strip()
        return CaptionResult(text, text.split())

    def ask(self, image: ImageInput, question: str, *, max_new_tokens: int | None = None) -> CaptionResult:
        """A chat model's answer (greedy) to `question` about `image`; an empty question asks for a description.

        GIT and BLIP cannot answer questions: for them this is `run(image)`, the image's caption, whatever the
        question (`answers_questions` tells which kind is loaded)."""
        model, processor, architecture = self._loaded()
        if not architecture.answers_questions:
            return self.run(image, max_new_tokens=max_new_tokens)
        return self._answer(model, processor, load_image(image), question.strip() or DESCRIBE_QUESTION,
                            max_new_tokens or self.max_new_tokens)

    def _answer(self, model: PreTrainedModel, processor: ProcessorMixin, picture: PILImage.Image, question: str,
                max_new_tokens: int) -> CaptionResult:
        import torch

        prompt = _chat_prompt(processor, question)
        # As the image-text-to-text pipeline does: a template that writes the BOS token gets no special tokens added.
        bos = processor.tokenizer.bos_token
        inputs = processor(text=prompt, images=[picture], return_tensors="pt",
                           add_special_tokens=not (bos and prompt.startswith(bos)))
        inputs = inputs.to(self.device, dtype=model.dtype)  # casts only the floating-point tensors (pixels)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        new_ids = out[0, inputs["input_ids"].shape[1]:]
        text = processor.tokenizer.decode(new_ids.tolist(), skip_special_tokens=True).strip()
        return CaptionResult(text, text.split())

    def heatmap(self, image: ImageInput, caption: CaptionResult | None = None) -> list[WordHeat]:
        """One heat map per word of the caption (computed if not given), in the image's own size (GIT and BLIP)."""
        import torch

        model, processor, architecture = self._loaded()
        if architecture.answers_questions:
            raise ValueError(f"heat maps are available for GIT and BLIP captioners only; {self.model_name!r} is a "
                             "chat vision-language model")
        picture = load_image(image)
        if caption is None:
            caption = self.run(picture)
        spans = [match.span() for match in re.finditer(r"\S+", caption.text)]
        if not spans:
            return []
        encoded = processor.tokenizer(caption.text, add_special_tokens=False, return_offsets_mapping=True)
        # Which word each sub-word token belongs to: the word whose characters hold the token's start.
        word_of_token = [next((w for w, (s, e) in enumerate(spans) if s <= first < e), None)
                         for first, _ in encoded["offset_mapping"]]
        with torch.inference_mode():
            pixels = self._pixels(model, processor, picture)
            start = architecture.start_token(model.config)
            ids = torch.tensor([[start, *encoded["input_ids"]]], device=self.device)
            attention = architecture.image_attention(model, pixels, ids).float()
        # Row t-1 predicted token t; the CLS column is no place in the image.
        layers = min(HEAT_LAST_LAYERS, attention.shape[0])
        per_token = attention[-layers:, :, :-1, 1:].mean(dim=(0, 1)).cpu().numpy()  # (caption tokens, patches)
        grid = _patch_grid(model.config.vision_config)
        box = _input_box(processor.image_processor, picture.height, picture.width)
        heats = []
        for w, (s, e) in enumerate(spans):
            rows = [t for t, word in enumerate(word_of_token) if word == w]
            if rows:
                heat = _upsample(per_token[rows].mean(axis=0).reshape(grid), box, picture.height, picture.width)
            else:  # the tokenizer dropped the word's characters: nothing was written, nowhere was looked at
                heat = np.zeros((picture.height, picture.width), dtype=np.float32)
            heats.append(WordHeat(caption.text[s:e], heat))
        return heats


def _upsample(grid: np.ndarray, box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """The patch grid stretched over `box` of an (height, width) image, scaled to [0, 1]; 0 outside the box."""
    import torch

    top, left = int(round(box[0])), int(round(box[1]))
    bottom, right = max(int(round(box[2])), top + 1), max(int(round(box[3])), left + 1)
    inside = torch.nn.functional.interpolate(
        torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))[None, None],
        size=(bottom - top, right - left), mode="bilinear", align_corners=False,
    )[0, 0].numpy()
    low, high = float(inside.min()), float(inside.max())
    if high - low <= 1e-6 * max(abs(high), 1e-12):
        # Attention spread evenly (to float noise): stretching rounding errors to [0, 1] would draw a fake spot.
        inside = np.ones_like(inside)
    else:
        inside = (inside - low) / (high - low)
    heat = np.zeros((height, width), dtype=np.float32)
    heat[top:bottom, left:right] = np.clip(inside, 0.0, 1.0)
    return heat


def render_heatmap(image: ImageInput, heats: list[WordHeat], path: str | Path, *, columns: int = 4) -> None:
    """A PNG grid: the image with each word's heat over it, the word as the panel's title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    picture = load_image(image)
    # Panels are small: shrink big photos (and their heat) so the figure stays cheap to draw.
    scale = min(1.0, 320 / max(picture.size))
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    shown = picture.resize(size, Image.Resampling.BILINEAR) if scale < 1 else picture
    panels = heats or [WordHeat("(no words)", np.zeros((picture.height, picture.width), dtype=np.float32))]
    cols = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / cols)
    aspect = shown.height / shown.width
    figure = Figure(figsize=(3 * cols, 3 * aspect * rows + 0.4 * rows))
    FigureCanvasAgg(figure)
    for i, panel in enumerate(panels):
        axes = figure.add_subplot(rows, cols, i + 1)
        axes.imshow(shown)
        heat = panel.heat
        if heat.shape != (shown.height, shown.width):
            heat = np.asarray(Image.fromarray(heat.astype(np.float32)).resize(size, Image.Resampling.BILINEAR))
        axes.imshow(heat, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
        axes.set_title(panel.word, fontsize=10)
        axes.axis("off")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
