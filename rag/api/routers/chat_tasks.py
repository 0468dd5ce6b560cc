"""What the chat endpoint does for a request the router sends to a task other than question answering.

Each handler takes the request and the last user message's text, and returns
the reply's text and the `task` extension field (images, job id, results).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import asdict

from generators.media.images import png_bytes
from generators.text.text_generators import Sampling
from rag.api.errors import ApiError
from rag.api.routers.generation import request_image, submit_video
from rag.api.schemas import ChatRequest, TaskInfo
from rag.api.services import Services
from rag.router import given_text

DEFAULT_LABELS = ["positive", "negative"]  # the classic sentiment example
CHAT_IMAGE_SIDE = 512

TaskHandler = Callable[[Services, ChatRequest, str], tuple[str, TaskInfo]]


def _info(**fields) -> TaskInfo:
    return TaskInfo(name="", reason="", **fields)  # name and reason come from the route


def caption(services: Services, body: ChatRequest, text: str) -> tuple[str, TaskInfo]:
    image = body.image_url()
    if image is None:
        raise ApiError(422, "task caption needs an image part (image_url) in the last user message",
                       "invalid_request_error")
    picture = request_image(image)
    question = text.strip()
    with services.media.use("caption") as captioner:
        # A chat vision-language model answers what was asked about the image; a captioner describes it.
        asked = bool(question) and captioner.answers_questions
        result = captioner.ask(picture, question) if asked else captioner.run(picture)
    found = {"caption": result.text, "words": result.words}
    return result.text, _info(result={**found, "question": question} if asked else found)


def image(services: Services, body: ChatRequest, text: str) -> tuple[str, TaskInfo]:
    with services.media.use("image") as drawer:
        side = min(CHAT_IMAGE_SIDE, services.settings.media.max_image_side)
        result = drawer.run(text, width=side, height=side)
    encoded = base64.b64encode(png_bytes(result.images[0])).decode()
    # Markdown with a data URL: clients that only read `content` still show the image.
    content = f"![{text[:80]}](data:image/png;base64,{encoded})"
    return content, _info(images=[encoded], result={"seed": result.seed, "steps": result.steps})


def video(services: Services, body: ChatRequest, text: str) -> tuple[str, TaskInfo]:
    job = submit_video(services, text)
    content = (f"Rendering the video as job {job.id}. Progress: GET /v1/jobs/{job.id} (or /events); "
               f"the MP4: GET /v1/jobs/{job.id}/content.")
    return content, _info(job=job.id)


def classify(services: Services, body: ChatRequest, text: str) -> tuple[str, TaskInfo]:
    result = services.classifier([given_text(text)], body.labels or DEFAULT_LABELS)
    best = result.results[0]
    return f"{best.label} ({best.score:.2f})", _info(result=asdict(result))


def summarize(services: Services, body: ChatRequest, text: str) -> tuple[str, TaskInfo]:
    summary = services.summarizer(given_text(text))
    return summary.summary, _info(result=asdict(summary))


def complete(services: Services, body: ChatRequest, text: str) -> tuple[str, TaskInfo]:
    prompt = given_text(text)
    wanted = body.max_completion_tokens or body.max_tokens or 64
    sampling = Sampling(max_new_tokens=min(wanted, services.settings.api.max_completion_tokens),
                        temperature=1.0 if body.temperature is None else body.temperature,
                        top_p=body.top_p or 1.0)
    continuation = services.models.generator.complete(prompt, sampling)
    return prompt + continuation, _info(result={"prompt": prompt, "continuation": continuation})


TASK_HANDLERS: dict[str, TaskHandler] = {
    "caption": caption, "image": image, "video": video, "classify": classify, "summarize": summarize,
    "complete": complete,
}
