"""Text → image on a tiny random Stable Diffusion pipeline: plumbing, formats, seeds and errors, never quality."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

from generators.media.images import ImageResult, TextToImage, png_bytes  # noqa: E402
from generators.resolve import ModelUnavailableError  # noqa: E402

TINY_STEPS = 2

# diffusers' Euler scheduler trips a numpy 2 deprecation inside its own code: not ours to fix here.
pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
              pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tiny_image_model_dir) -> Path:
    return tiny_image_model_dir


@pytest.fixture(scope="module")
def drawer(tiny_pipeline_dir) -> TextToImage:
    model = TextToImage(str(tiny_pipeline_dir), default_steps=TINY_STEPS)
    model.warm_up()
    return model


def _draw(drawer: TextToImage, **kwargs) -> ImageResult:
    return drawer.run(kwargs.pop("prompt", "a cat"), **{"width": 64, "height": 64, **kwargs})


def test_constructor_is_cheap_and_loads_lazily(tiny_pipeline_dir):
    model = TextToImage(str(tiny_pipeline_dir))
    assert not model.loaded and model.memory_bytes() == 0
    assert model.resolved.source == "local" and (model.resolved.path / "model_index.json").is_file()


def test_png_images_of_the_requested_size(drawer):
    result = _draw(drawer, n=2, width=64, height=128, seed=1)
    assert (result.width, result.height, result.steps, result.guidance, result.seed) == (64, 128, TINY_STEPS, 0.0, 1)
    assert len(result.images) == 2
    from PIL import Image

    encoded = [png_bytes(image) for image in result.images]
    for data in encoded:
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        decoded = Image.open(io.BytesIO(data))
        decoded.load()
        assert decoded.format == "PNG" and decoded.size == (64, 128) and decoded.mode == "RGB"
    assert encoded[0] != encoded[1]  # one generator for the batch still draws each image its own noise


def test_seed_reproduces_the_images(drawer):
    random = _draw(drawer, n=2)  # no seed: a random one, reported
    assert isinstance(random.seed, int) and 0 <= random.seed < 2**31
    same = _draw(drawer, n=2, seed=random.seed)
    other = _draw(drawer, n=2, seed=random.seed + 1)
    as_png = [png_bytes(image) for image in random.images]
    assert [png_bytes(image) for image in same.images] == as_png
    assert [png_bytes(image) for image in other.images] != as_png


def test_negative_prompt_is_used_with_guidance(drawer):
    # sd-turbo's guidance 0 turns classifier-free guidance off; above 1 the negative prompt takes part.
    with_negative = _draw(drawer, negative_prompt="a dog", guidance=3.0, seed=3)
    assert with_negative.guidance == 3.0 and with_negative.images[0].size == (64, 64)
    without = _draw(drawer, guidance=3.0, seed=3)
    assert png_bytes(without.images[0]) != png_bytes(with_negative.images[0])


def test_on_step_is_called_once_per_step(drawer):
    calls: list[tuple[int, int]] = []
    result = _draw(drawer, steps=3, seed=4, on_step=lambda step, total: calls.append((step, total)))
    assert result.steps == 3
    assert calls == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"n": 0}, "n must"),
        ({"n": 5}, "n must"),
        ({"width": 100}, "width"),
        ({"height": 60}, "height"),
        ({"width": 4096}, "width"),
        ({"height": 56}, "height"),
        ({"steps": 0}, "steps"),
        ({"steps": 101}, "steps"),
        ({"guidance": -1.0}, "guidance"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_input_is_a_value_error(kwargs, message, tiny_pipeline_dir):
    # A fresh, never loaded model: validation comes before any loading.
    model = TextToImage(str(tiny_pipeline_dir))
    with pytest.raises(ValueError, match=message):
        _draw(model, **kwargs)
    assert not model.loaded


def test_unload_frees_and_run_loads_again(drawer):
    loaded = drawer.memory_bytes()
    assert drawer.loaded and loaded > 0
    before = png_bytes(_draw(drawer, seed=5).images[0])
    drawer.unload()
    assert not drawer.loaded and drawer.memory_bytes() == 0
    after = png_bytes(_draw(drawer, seed=5).images[0])  # loads again
    assert drawer.loaded and drawer.memory_bytes() == loaded and after == before


def test_concurrent_callers_share_one_load_and_get_reproducible_images(tiny_pipeline_dir):
    model = TextToImage(str(tiny_pipeline_dir), default_steps=TINY_STEPS)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: _draw(model, seed=9), range(3)))
    images = {png_bytes(result.images[0]) for result in results}
    assert len(images) == 1  # runs are serialised: no scheduler state leaks from one call into another
    pipeline = model._pipeline
    model.warm_up()
    assert model._pipeline is pipeline


def test_unresolvable_model_names_the_setting(tmp_path):
    model = TextToImage("someone/no-such-image-model", setting="RAG_MEDIA__IMAGE_MODEL")  # HF_HUB_OFFLINE=1 in tests/conftest.py
    with pytest.raises(ModelUnavailableError) as caught:
        model.run("a cat", width=64, height=64)
    assert caught.value.setting == "RAG_MEDIA__IMAGE_MODEL" and caught.value.role == "text-to-image"
    with pytest.raises(ModelUnavailableError):
        TextToImage(str(tmp_path / "absent")).resolved
