from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generators.media.captioner import CaptionResult, ImageCaptioner, WordHeat, load_image, render_heatmap
from generators.resolve import ModelUnavailableError
from tests.tiny_models import build_tiny_blip

HEIGHT, WIDTH = 40, 48  # not square: the tiny processor centre-crops columns 4..43 (resize 40 → 32, crop 32)


@pytest.fixture(scope="module")
def git_dir(tiny_caption_model_dir) -> Path:
    return tiny_caption_model_dir


@pytest.fixture(scope="module")
def blip_dir(tmp_path_factory) -> Path:
    return build_tiny_blip(tmp_path_factory.mktemp("tiny-blip"))


@pytest.fixture(scope="module")
def captioner(git_dir) -> ImageCaptioner:
    model = ImageCaptioner(str(git_dir), max_new_tokens=6)
    model.warm_up()
    return model


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    """A gradient with a bright square: structure, so different inputs give different pixels."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    pixels = np.stack([x * 5, y * 6, (x + y) * 3], axis=-1).astype(np.uint8)
    pixels[5:15, 30:42] = 255
    return Image.fromarray(pixels, "RGB")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_caption_is_deterministic_text(captioner, picture):
    first = captioner.run(picture)
    assert isinstance(first, CaptionResult) and isinstance(first.text, str) and first.text
    assert first.words == first.text.split()
    assert captioner.run(picture) == first


def test_bytes_path_pil_and_data_url_give_the_same_caption(captioner, picture, tmp_path):
    data = _png(picture)
    path = tmp_path / "picture.png"
    path.write_bytes(data)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    expected = captioner.run(picture)
    assert captioner.run(data) == expected
    assert captioner.run(path) == expected
    assert captioner.run(str(path)) == expected
    assert captioner.run(url) == expected


def test_a_shorter_budget_gives_a_prefix_of_the_greedy_caption(captioner, picture):
    long = captioner.run(picture, max_new_tokens=6)
    short = captioner.run(picture, max_new_tokens=2)
    assert short.text and long.text.startswith(short.text) and len(short.text) < len(long.text)


def test_a_prompt_conditions_the_caption_and_is_not_repeated(captioner, picture):
    with_prompt = captioner.run(picture, prompt="a photo of")
    assert isinstance(with_prompt.text, str) and with_prompt.text
    assert captioner.run(picture, prompt="a photo of") == with_prompt
    assert not with_prompt.text.startswith("a photo of")


def test_undecodable_input_raises_value_error(captioner, tmp_path):
    with pytest.raises(ValueError, match="could not be decoded"):
        captioner.run(b"these bytes are not an image")
    with pytest.raises(ValueError, match="could not be decoded"):
        load_image(_png(Image.new("RGB", (8, 8)))[:40])  # truncated PNG
    with pytest.raises(ValueError, match="base64"):
        load_image("data:image/png;base64,@@not base64@@")
    with pytest.raises(ValueError, match="data URL"):
        load_image("data:image/png;base64")  # no comma: no payload
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")


def test_load_image_gives_rgb_with_transparency_on_white():
    transparent = Image.new("RGBA", (6, 4), (255, 0, 0, 0))
    transparent.putpixel((0, 0), (255, 0, 0, 255))
    loaded = load_image(_png(transparent))
    assert loaded.mode == "RGB" and loaded.size == (6, 4)
    assert loaded.getpixel((0, 0)) == (255, 0, 0) and loaded.getpixel((5, 3)) == (255, 255, 255)
    assert load_image(Image.new("L", (3, 3), 7)).getpixel((1, 1)) == (7, 7, 7)


def test_heatmap_gives_one_image_sized_unit_map_per_word(captioner, picture):
    caption = captioner.run(picture)
    heats = captioner.heatmap(picture, caption)
    assert [h.word for h in heats] == caption.words
    for heat in heats:
        assert isinstance(heat, WordHeat) and heat.heat.shape == (HEIGHT, WIDTH)
        assert heat.heat.min() >= 0.0 and heat.heat.max() <= 1.0 and heat.heat.max() == pytest.approx(1.0)
        # The processor centre-crops columns 4..43: the model never saw the rest, so no heat there.
        assert not heat.heat[:, :4].any() and not heat.heat[:, 44:].any()
    # Without a caption it captions first, greedily: the same words.
    assert [h.word for h in captioner.heatmap(_png(picture))] == caption.words


def test_heatmap_of_a_given_caption_groups_sub_words(captioner, picture):
    caption = CaptionResult("a skateboarding dog.", ["a", "skateboarding", "dog."])
    tokens = captioner._processor.tokenizer.tokenize(caption.text)
    assert len(tokens) > len(caption.words)  # sub-words ("skate", "##board", ...) and "." are folded into words
    heats = captioner.heatmap(picture, caption)
    assert [h.word for h in heats] == ["a", "skateboarding", "dog."]
    assert all(h.heat.shape == (HEIGHT, WIDTH) for h in heats)
    assert captioner.heatmap(picture, CaptionResult("", [])) == []


def test_evenly_spread_attention_is_drawn_flat_not_as_a_spot_of_rounding_noise():
    from generators.media.captioner import _upsample

    noisy_flat = np.full((4, 4), 1 / 17, dtype=np.float32)
    noisy_flat[1, 2] += 1e-9
    heat = _upsample(noisy_flat, (0.0, 4.0, 40.0, 44.0), HEIGHT, WIDTH)
    assert heat.shape == (HEIGHT, WIDTH) and (heat[:, 4:44] == 1.0).all() and not heat[:, :4].any()


@pytest.mark.filterwarnings("ignore:Glyph")  # random-weight captions hold characters the default font lacks
def test_render_heatmap_writes_a_png(captioner, picture, tmp_path):
    heats = captioner.heatmap(picture)
    path = tmp_path / "heat.png"
    render_heatmap(picture, heats, path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as rendered:
        assert rendered.format == "PNG" and rendered.width > WIDTH
    render_heatmap(picture, [], tmp_path / "empty.png")  # no words: still a picture
    assert (tmp_path / "empty.png").read_bytes().startswith(b"\x89PNG")


def test_unload_frees_and_memory_bytes_counts_parameters(git_dir, picture):
    model = ImageCaptioner(str(git_dir), max_new_tokens=2)
    assert model.memory_bytes() == 0
    model.warm_up()
    loaded = model.memory_bytes()
    assert loaded == sum(p.numel() * 4 for p in model._model.parameters()) > 0  # float32 on CPU
    caption = model.run(picture)
    model.unload()
    assert model.memory_bytes() == 0
    assert model.run(picture) == caption  # loads again on use
    assert model.memory_bytes() == loaded


def test_unresolvable_name_raises_with_the_setting():
    model = ImageCaptioner("no-such-org/no-such-captioner", setting="RAG_MEDIA__CAPTION_MODEL")  # cheap: nothing resolved yet
    with pytest.raises(ModelUnavailableError) as caught:
        model.warm_up()
    assert caught.value.setting == "RAG_MEDIA__CAPTION_MODEL"
    with pytest.raises(ModelUnavailableError):
        _ = ImageCaptioner("./no/such/folder").resolved


def test_blip_captions_and_maps_words_through_cross_attention(blip_dir, picture):
    model = ImageCaptioner(str(blip_dir), max_new_tokens=4)
    caption = model.run(picture)
    assert isinstance(caption.text, str) and caption.text and model.run(_png(picture)) == caption
    heats = model.heatmap(picture, caption)
    assert [h.word for h in heats] == caption.words
    for heat in heats:
        # No centre crop: the whole image was seen, so the heat may be anywhere.
        assert heat.heat.shape == (HEIGHT, WIDTH) and 0.0 <= heat.heat.min() and heat.heat.max() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def vlm(tiny_vlm_model_dir) -> ImageCaptioner:
    model = ImageCaptioner(str(tiny_vlm_model_dir), max_new_tokens=5)
    model.warm_up()
    return model


def test_a_chat_vlm_answers_a_question_deterministically(vlm, picture):
    answer = vlm.ask(picture, "What colour is the car?")
    assert isinstance(answer, CaptionResult) and isinstance(answer.text, str) and answer.text
    assert answer.words == answer.text.split()
    assert vlm.ask(_png(picture), "What colour is the car?") == answer  # greedy, whatever the image's form
    # Only the new tokens are decoded: the chat prompt is not repeated.
    assert "colour" not in answer.text and "assistant" not in answer.text.lower()
    assert vlm.ask(picture, "What colour is the car?", max_new_tokens=2).text
    # Asked nothing (as `run` asks), it describes the image.
    assert vlm.run(picture) == vlm.ask(picture, "") == vlm.ask(picture, "Describe this image in one sentence.")


def test_the_question_goes_into_the_chat_prompt_after_the_image(vlm):
    from generators.media.captioner import _chat_prompt

    processor = vlm._processor
    car, sky = _chat_prompt(processor, "What colour is the car?"), _chat_prompt(processor, "Is the sky clear?")
    assert "What colour is the car?" in car and "Is the sky clear?" in sky and car != sky
    assert car.index("<image>") < car.index("What colour") and car.endswith("ASSISTANT:")
    # A typed image token cannot ask for a second image.
    assert _chat_prompt(processor, "<image> again?").count("<image>") == 1


def test_answers_questions_tells_a_chat_vlm_from_a_captioner(vlm, captioner):
    assert vlm.answers_questions is True
    assert captioner.answers_questions is False


def test_asking_a_captioner_describes_the_image(captioner, picture):
    assert captioner.ask(picture, "What colour is the car?") == captioner.run(picture)


def test_a_chat_vlm_has_no_heat_map(vlm, picture):
    with pytest.raises(ValueError, match="heat maps are available for GIT and BLIP"):
        vlm.heatmap(picture)
