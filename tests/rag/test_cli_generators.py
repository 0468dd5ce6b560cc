"""`rag image`, `rag caption`, `rag video` and `rag complete` on tiny random-weight models (plumbing only)."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from rag.cli import app

runner = CliRunner()
pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")]


def test_image_writes_pngs_of_the_asked_size_and_the_seed_repeats_them(tmp_path, monkeypatch, tiny_image_model_dir):
    monkeypatch.setenv("RAG_MEDIA__IMAGE_MODEL", str(tiny_image_model_dir))
    result = runner.invoke(app, ["image", "a red kite", "-o", str(tmp_path / "kite.png"), "--n", "2",
                                 "--size", "64x128", "--steps", "2", "--seed", "9"])
    assert result.exit_code == 0, result.output
    first, second = tmp_path / "kite-1.png", tmp_path / "kite-2.png"
    assert Image.open(first).size == (64, 128) and Image.open(second).size == (64, 128)
    again = runner.invoke(app, ["image", "a red kite", "-o", str(tmp_path / "again.png"), "--size", "64x128",
                                "--steps", "2", "--seed", "9"])
    assert again.exit_code == 0 and (tmp_path / "again.png").read_bytes() == first.read_bytes()


def test_caption_prints_text_and_writes_a_heat_map(tmp_path, monkeypatch, tiny_caption_model_dir):
    monkeypatch.setenv("RAG_MEDIA__CAPTION_MODEL", str(tiny_caption_model_dir))
    picture = tmp_path / "gradient.png"
    y, x = np.mgrid[0:32, 0:40]
    Image.fromarray(np.stack([x * 5, y * 6, (x + y) * 3], axis=-1).astype(np.uint8), "RGB").save(picture)
    result = runner.invoke(app, ["caption", str(picture), "--heatmap", str(tmp_path / "heat.png")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() and Image.open(tmp_path / "heat.png").format == "PNG"


def test_video_writes_an_mp4_with_the_asked_frames(tmp_path, monkeypatch, tiny_video_model_dir):
    monkeypatch.setenv("RAG_MEDIA__VIDEO_MODEL", str(tiny_video_model_dir))
    result = runner.invoke(app, ["video", "waves", "-o", str(tmp_path / "waves.mp4"), "--frames", "3",
                                 "--size", "32x32", "--steps", "2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert iio.imread(tmp_path / "waves.mp4").shape[:3] == (3, 32, 32)


def test_complete_prints_the_prompt_and_its_continuation(monkeypatch, tiny_lm_dir):
    monkeypatch.setenv("RAG_GENERATOR__MODEL", str(tiny_lm_dir))
    result = runner.invoke(app, ["complete", "Once upon a time", "--max-tokens", "5", "--temperature", "0"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Once upon a time") and len(result.stdout.strip()) > len("Once upon a time")


@pytest.mark.parametrize(("command", "setting"), [
    (["image", "a cat", "-o", "x.png"], "RAG_MEDIA__IMAGE_MODEL"),
    (["video", "a cat", "-o", "x.mp4"], "RAG_MEDIA__VIDEO_MODEL"),
])
def test_unresolvable_models_fail_with_the_setting_to_change(tmp_path, monkeypatch, command, setting):
    monkeypatch.setenv(setting, "no-such-org/no-such-model")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, command)
    assert result.exit_code == 2 and setting in result.output and not list(tmp_path.iterdir())
