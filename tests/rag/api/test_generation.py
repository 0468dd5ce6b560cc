"""Completions, images, captions and video jobs over HTTP, and the chat endpoint routing to them.

Tiny random-weight models (tests/tiny_models.py) stand in for the real ones: these tests check formats,
seeds, jobs, routing and errors, never the quality of a picture or a caption.
"""

from __future__ import annotations

import base64
import io
import json
import time

import imageio.v3 as iio
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from rag.api.app import create_app
from tests.rag.api.conftest import make_settings

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")]


@pytest.fixture(scope="module")
def media(tmp_path_factory, tiny_lm_dir, tiny_image_model_dir, tiny_caption_model_dir, tiny_video_model_dir):
    settings = make_settings(tmp_path_factory.mktemp("media-app"), generator={"model": str(tiny_lm_dir)}, media={"image_model": str(tiny_image_model_dir), "image_steps": 2, "caption_model": str(tiny_caption_model_dir), "video_model": str(tiny_video_model_dir), "video_steps": 2, "video_frames": 4})
    with TestClient(create_app(settings, warm_up="none")) as client:
        yield client


@pytest.fixture
def unresolvable(tmp_path):
    settings = make_settings(tmp_path, media={"image_model": "no-such-org/no-such-image-model", "caption_model": "no-such-org/no-such-captioner", "video_model": "no-such-org/no-such-video"})
    with TestClient(create_app(settings, warm_up="none")) as client:
        yield client


def _png_data_url(width: int = 40, height: int = 32) -> str:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 5, y * 6, (x + y) * 3], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _image(b64: str) -> Image.Image:
    picture = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert picture.format == "PNG"
    return picture


def test_completions_follow_the_openai_schema_and_a_seed_repeats_the_text(media):
    request = {"model": "local", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 1.2, "seed": 5}
    first = media.post("/v1/completions", json=request)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["object"] == "text_completion" and body["choices"][0]["text"]
    assert media.post("/v1/completions", json=request).json()["choices"][0]["text"] == body["choices"][0]["text"]


def test_streamed_completions_are_server_sent_text_completion_chunks(media):
    request = {"model": "local", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0, "stream": True}
    with media.stream("POST", "/v1/completions", json=request) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks) and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    streamed = "".join(c["choices"][0]["text"] for c in chunks)
    plain = media.post("/v1/completions", json={**request, "stream": False}).json()["choices"][0]["text"]
    assert streamed == plain


@pytest.mark.parametrize("bad", [{"prompt": ["a", "b"]}, {"stop": ["1", "2", "3", "4", "5"]}, {"max_tokens": 0},
                                 {"top_p": 0}, {"prompt": 3}])
def test_bad_completion_requests_are_422(media, bad):
    response = media.post("/v1/completions", json={"model": "local", "prompt": "Hi", **bad})
    assert response.status_code == 422 and response.json()["error"]["type"] == "invalid_request_error"


def test_images_are_png_of_the_asked_size_and_the_seed_draws_them_again(media):
    request = {"prompt": "a lighthouse at dusk", "n": 2, "size": "64x128", "seed": 3}
    body = media.post("/v1/images/generations", json=request).json()
    assert [(_image(d["b64_json"]).size) for d in body["data"]] == [(64, 128), (64, 128)]
    assert body["seed"] == 3 and body["steps"] == 2
    again = media.post("/v1/images/generations", json=request).json()
    assert [d["b64_json"] for d in again["data"]] == [d["b64_json"] for d in body["data"]]
    unseeded = media.post("/v1/images/generations", json={"prompt": "a lighthouse", "size": "64x64"}).json()
    replay = media.post("/v1/images/generations",
                        json={"prompt": "a lighthouse", "size": "64x64", "seed": unseeded["seed"]}).json()
    assert replay["data"][0]["b64_json"] == unseeded["data"][0]["b64_json"]


@pytest.mark.parametrize("bad", [{"size": "63x64"}, {"size": "big"}, {"n": 9}, {"response_format": "url"},
                                 {"prompt": ""}, {"steps": 0}])
def test_bad_image_requests_are_422(media, bad):
    response = media.post("/v1/images/generations", json={"prompt": "a cat", "size": "64x64", **bad})
    assert response.status_code == 422, response.text


def test_captions_come_with_a_heat_map_png(media):
    url = _png_data_url()
    body = media.post("/v1/images/captions", json={"image": url, "heatmap": True}).json()
    assert isinstance(body["caption"], str) and body["words"] == body["caption"].split()
    assert _image(body["heatmap_png"]).size[0] > 0
    bare = url.split(",", 1)[1]  # bare base64 works too
    assert media.post("/v1/images/captions", json={"image": bare}).json()["caption"] == body["caption"]


@pytest.mark.parametrize("image", ["/etc/passwd", "http://127.0.0.1/cat.png", "not base64 at all!",
                                   "data:image/png;base64,AAAA"])
def test_captions_never_read_paths_or_urls_and_reject_undecodable_images(media, image):
    response = media.post("/v1/images/captions", json={"image": image})
    assert response.status_code == 422 and "image" in response.json()["error"]["message"]


def _wait(client: TestClient, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_a_video_is_a_job_with_progress_events_and_an_mp4(media, tmp_path):
    started = media.post("/v1/videos", json={"prompt": "waves on a beach", "size": "32x32", "seed": 4})
    assert started.status_code == 202 and started.json()["status"] in ("queued", "running")
    job_id = started.json()["id"]
    with media.stream("GET", f"/v1/jobs/{job_id}/events") as events:
        states = [json.loads(line[6:]) for line in events.iter_lines() if line.startswith("data: ")]
    assert states[-1]["status"] == "succeeded" and states[-1]["content_url"] == f"/v1/jobs/{job_id}/content"
    steps = [s["step"] for s in states if s["status"] == "running"]
    assert steps == sorted(steps) and states[-1]["total_steps"] == 2 and states[-1]["details"]["frames"] == 4
    video = media.get(f"/v1/jobs/{job_id}/content")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    path = tmp_path / "clip.mp4"
    path.write_bytes(video.content)
    assert iio.imread(path).shape[:3] == (4, 32, 32)


def test_unknown_jobs_are_404_and_unfinished_content_409(media):
    assert media.get("/v1/jobs/job-nope").status_code == 404
    assert media.get("/v1/jobs/job-nope/content").status_code == 404


def test_models_that_resolve_nowhere_are_503_naming_the_setting(unresolvable):
    for path, body, setting in (
        ("/v1/images/generations", {"prompt": "a cat", "size": "64x64"}, "RAG_MEDIA__IMAGE_MODEL"),
        ("/v1/images/captions", {"image": _png_data_url()}, "RAG_MEDIA__CAPTION_MODEL"),
        ("/v1/videos", {"prompt": "a cat"}, "RAG_MEDIA__VIDEO_MODEL"),
    ):
        response = unresolvable.post(path, json=body)
        assert response.status_code == 503, (path, response.text)
        assert response.json()["error"]["setting"] == setting


def _chat(client: TestClient, content, **extra):
    response = client.post("/v1/chat/completions",
                           json={"model": "extractive", "messages": [{"role": "user", "content": content}], **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_chat_routes_a_drawing_request_to_the_image_model(media):
    body = _chat(media, "Draw a red bicycle leaning on a wall")
    assert body["task"]["name"] == "image" and body["rag"] is None
    assert _image(body["task"]["images"][0]).size == (512, 512)
    assert body["choices"][0]["message"]["content"].startswith("![")


def test_chat_captions_an_image_part(media):
    body = _chat(media, [{"type": "text", "text": "What is in this picture?"},
                         {"type": "image_url", "image_url": {"url": _png_data_url()}}])
    assert body["task"]["name"] == "caption"
    assert body["choices"][0]["message"]["content"] == body["task"]["result"]["caption"]


def test_chat_classifies_summarises_continues_and_queues_videos(media):
    classified = _chat(media, "Is this review positive or negative? 'The food was cold and the waiter was rude.'")
    assert classified["task"]["name"] == "classify"
    assert classified["task"]["result"]["results"][0]["label"] in ("positive", "negative")
    labelled = _chat(media, "Classify: the match ended two to one", task="classify", labels=["sport", "cooking"])
    assert labelled["task"]["result"]["results"][0]["label"] in ("sport", "cooking")
    summary = _chat(media, "Summarize this: Tides rise twice a day. The Moon pulls the sea. Bees dance.")
    assert summary["task"]["name"] == "summarize" and summary["choices"][0]["message"]["content"]
    story = _chat(media, "Continue this story: The fox crept", max_tokens=6, temperature=0)
    assert story["task"]["name"] == "complete"
    assert story["choices"][0]["message"]["content"].startswith("The fox crept")
    video = _chat(media, "Make a short video of waves on a beach")
    assert video["task"]["name"] == "video" and _wait(media, video["task"]["job"])["status"] == "succeeded"


def test_a_streamed_task_reply_ends_with_the_task_field(media):
    with media.stream("POST", "/v1/chat/completions",
                      json={"model": "extractive", "stream": True, "task": "summarize",
                            "messages": [{"role": "user", "content": "Summarize: One. Two. Three."}]}) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    last = json.loads(lines[-2][6:])
    assert last["task"]["name"] == "summarize" and last["choices"][0]["finish_reason"] == "stop"


def test_caption_task_without_an_image_is_422(media):
    response = media.post("/v1/chat/completions", json={"model": "extractive", "task": "caption",
                                                         "messages": [{"role": "user", "content": "describe it"}]})
    assert response.status_code == 422 and "image" in response.json()["error"]["message"]


@pytest.fixture(scope="module")
def vlm_media(tmp_path_factory, tiny_vlm_model_dir):
    settings = make_settings(tmp_path_factory.mktemp("vlm-app"), media={"caption_model": str(tiny_vlm_model_dir)})
    with TestClient(create_app(settings, warm_up="none")) as client:
        yield client


def test_chat_asks_a_vision_language_model_the_question_about_the_image(vlm_media):
    question = "What colour is the car?"
    body = _chat(vlm_media, [{"type": "text", "text": question},
                             {"type": "image_url", "image_url": {"url": _png_data_url()}}])
    assert body["task"]["name"] == "caption"
    result = body["task"]["result"]
    assert result["question"] == question and result["caption"]
    assert body["choices"][0]["message"]["content"] == result["caption"]
    assert result["words"] == result["caption"].split()
    # No text: nothing was asked, the model describes the image.
    described = _chat(vlm_media, [{"type": "image_url", "image_url": {"url": _png_data_url()}}])
    assert described["task"]["name"] == "caption" and "question" not in described["task"]["result"]


def test_chat_with_a_captioner_captions_whatever_is_asked(media):
    body = _chat(media, [{"type": "text", "text": "What colour is the car?"},
                         {"type": "image_url", "image_url": {"url": _png_data_url()}}])
    assert body["task"]["name"] == "caption" and "question" not in body["task"]["result"]
