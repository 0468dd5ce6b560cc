"""Generators beyond cited answers: plain completions, images, captions, and video jobs.

`POST /v1/completions` and `POST /v1/images/generations` follow the OpenAI
schema (extensions: negative prompt, steps, guidance, seed). A caption is
`POST /v1/images/captions`. A video takes minutes on a CPU, so `POST
/v1/videos` answers 202 with a job; `GET /v1/jobs/{id}` reports its progress,
`GET /v1/jobs/{id}/events` streams it as server-sent events, and `GET
/v1/jobs/{id}/content` returns the MP4. A model that resolves nowhere is a 503
naming the setting (never a placeholder image).
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from generators.media.captioner import load_image, render_heatmap
from generators.media.images import png_bytes
from generators.text.text_generators import Sampling
from generators.media.video import mp4_bytes
from rag.api.admission import SSE_HEADERS, stream_holding
from rag.api.deps import CallerDep, ServicesDep
from rag.api.errors import ApiError
from rag.api.jobs import Job, JobOutput, QueueFullError
from rag.api.schemas import (
    CaptionRequest,
    CaptionResponse,
    Completion,
    CompletionChoice,
    CompletionRequest,
    ErrorResponse,
    ImageData,
    ImageGenerationRequest,
    ImagesResponse,
    JobOut,
    VideoRequest,
)
from rag.api.services import Services

router = APIRouter(prefix="/v1", tags=["generation"])

ERRORS = {code: {"model": ErrorResponse} for code in (401, 404, 409, 422, 429, 502, 503)}
_EVENT_WAIT_SECONDS = 15.0
MAX_IMAGE_SIDE = 1024  # a keep-alive event at least this often while a job runs


def _size(size: str, limit: int) -> tuple[int, int]:
    width, height = (int(side) for side in size.split("x"))
    if max(width, height) > limit:
        raise ApiError(422, f"size: at most {limit} pixels a side here", "invalid_request_error")
    return width, height


def request_image(value: str):
    """A PIL image from a request's data URL or bare base64; never a path or a URL to fetch (those are
    the server's files and network, not the caller's)."""
    value = value.strip()
    if value[:5].lower() == "data:":
        return _bounded(load_image(value))
    if value.lower().startswith(("http://", "https://", "file:")):
        raise ValueError("image: send the image itself as a data URL or base64; URLs are not fetched")
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("image: not a data URL and not valid base64") from None
    return _bounded(load_image(data))


def _bounded(picture):
    """Captioners see a few hundred pixels; a phone photo's full size would only cost memory (heat maps)."""
    picture.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    return picture


def _sampling(body: CompletionRequest) -> Sampling:
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > 4:
        raise ApiError(422, "stop: at most 4 strings", "invalid_request_error")
    return Sampling(max_new_tokens=body.max_tokens, temperature=body.temperature, top_p=body.top_p, seed=body.seed,
                    stop=tuple(s for s in stop if s))


def _prompt(body: CompletionRequest) -> str:
    if isinstance(body.prompt, list):
        if len(body.prompt) != 1:
            raise ApiError(422, "prompt: give one prompt (a list must hold exactly one string)", "invalid_request_error")
        return body.prompt[0]
    return body.prompt


@router.post("/completions", response_model=Completion, responses=ERRORS)
def completions(body: CompletionRequest, services: ServicesDep, caller: CallerDep):
    """Continue `prompt` with the configured generator (the local model, or the upstream API)."""
    generator = services.models.generator
    if body.max_tokens > services.settings.api.max_completion_tokens:
        raise ApiError(422, f"max_tokens: at most {services.settings.api.max_completion_tokens} here",
                       "invalid_request_error")
    prompt, sampling = _prompt(body), _sampling(body)
    completion_id = f"cmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.stream:
        slot = ExitStack()  # a generation slot (see rag/api/admission.py), given back when the stream ends
        slot.enter_context(services.generation.admit())
        try:
            pieces = generator.stream_complete(prompt, sampling)
            first = next(pieces, None)  # start generating before the status line: a missing model is still a 503
        except BaseException:
            slot.close()
            raise

        def events() -> Iterator[str]:
            def chunk(text: str, finish: str | None) -> str:
                data = {"id": completion_id, "object": "text_completion", "created": created, "model": body.model,
                        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}
                return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

            try:
                if first is not None:
                    yield chunk(first, None)
                for piece in pieces:
                    yield chunk(piece, None)
            except Exception as exc:  # noqa: BLE001 - the status line is sent: report the failure in the stream
                yield f"data: {json.dumps({'error': {'message': str(exc), 'type': type(exc).__name__}})}\n\n"
            else:
                yield chunk("", "stop")
            finally:
                pieces.close()
            yield "data: [DONE]\n\n"

        return stream_holding(slot, events())
    with services.generation.admit():
        text = generator.complete(prompt, sampling)
    return Completion(id=completion_id, created=created, model=body.model, choices=[CompletionChoice(text=text)])


@router.post("/images/generations", response_model=ImagesResponse, responses=ERRORS)
def generate_images(body: ImageGenerationRequest, services: ServicesDep, caller: CallerDep) -> ImagesResponse:
    """Draw `n` images of `prompt` (base64 PNG); the response's `seed` draws the same ones again."""
    width, height = _size(body.size, services.settings.media.max_image_side)
    with services.media.use("image") as drawer:
        result = drawer.run(body.prompt, negative_prompt=body.negative_prompt, n=body.n, width=width, height=height,
                            steps=body.steps, guidance=body.guidance_scale, seed=body.seed)
    return ImagesResponse(
        created=int(time.time()),
        data=[ImageData(b64_json=base64.b64encode(png_bytes(image)).decode()) for image in result.images],
        model=services.settings.media.image_model, seed=result.seed, steps=result.steps, guidance_scale=result.guidance,
    )


@router.post("/images/captions", response_model=CaptionResponse, responses=ERRORS)
def caption_image(body: CaptionRequest, services: ServicesDep, caller: CallerDep) -> CaptionResponse:
    """Describe an image in words; `heatmap: true` adds where the model looked for each word."""
    picture = request_image(body.image)
    with services.media.use("caption") as captioner:
        result = captioner.run(picture, prompt=body.prompt)
        heatmap = None
        if body.heatmap and result.words:
            heats = captioner.heatmap(picture, result)
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "heatmap.png"
                render_heatmap(picture, heats, path)
                heatmap = base64.b64encode(path.read_bytes()).decode()
    return CaptionResponse(caption=result.text, words=result.words, model=services.settings.media.caption_model,
                           heatmap_png=heatmap)


def _job_out(job: Job) -> JobOut:
    return JobOut(id=job.id, kind=job.kind, status=job.status, step=job.step, total_steps=job.total_steps,
                  created_at=job.created_at, finished_at=job.finished_at, error=job.error,
                  content_url=f"/v1/jobs/{job.id}/content" if job.status == "succeeded" else None,
                  details=job.details)


@router.post("/videos", response_model=JobOut, status_code=202, responses=ERRORS)
def generate_video(body: VideoRequest, services: ServicesDep, caller: CallerDep) -> JobOut:
    """Queue a video; follow it at `/v1/jobs/{id}` (or `/events`), fetch it from `/v1/jobs/{id}/content`."""
    width, height = _size(body.size, services.settings.media.max_video_side) if body.size else (None, None)
    job = submit_video(services, body.prompt, negative_prompt=body.negative_prompt, frames=body.frames,
                       steps=body.steps, guidance=body.guidance_scale, width=width, height=height, seed=body.seed)
    return _job_out(job)


def submit_video(services: Services, prompt: str, **options) -> Job:
    """Queue a video of `prompt` (options as `TextToVideo.run` takes them); 503 at once if no model resolves,
    429 if the queue is full."""
    services.media.model("video").resolved  # a model that resolves nowhere: 503 now, not a failed job later

    def render(progress) -> JobOutput:
        with services.media.use("video") as maker:
            result = maker.run(prompt, on_step=progress, **options)
        return JobOutput(mp4_bytes(result), "video/mp4",
                         {"seed": result.seed, "frames": len(result.frames), "fps": result.fps, "steps": result.steps,
                          "model": services.settings.media.video_model})

    try:
        return services.jobs.submit("video", render)
    except QueueFullError as exc:
        raise ApiError(429, str(exc), "rate_limit_error") from None


def _job(services: Services, job_id: str) -> Job:
    job = services.jobs.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id!r} (finished jobs are kept for a while, then forgotten)",
                       "not_found_error")
    return job


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ERRORS)
def get_job(job_id: str, services: ServicesDep, caller: CallerDep) -> JobOut:
    return _job_out(_job(services, job_id))


@router.get("/jobs/{job_id}/events", responses={200: {"content": {"text/event-stream": {}}}, **ERRORS})
def job_events(job_id: str, services: ServicesDep, caller: CallerDep) -> StreamingResponse:
    """The job as server-sent events: one each time its status or step changes, the last when it is done."""
    job = _job(services, job_id)

    def events() -> Iterator[str]:
        seen = None
        while True:
            state = (job.status, job.step)
            if state != seen:
                seen = state
                yield f"data: {_job_out(job).model_dump_json()}\n\n"
                if job.done:
                    return
            elif services.jobs.closed:  # the server is shutting down
                return
            else:
                yield ": waiting\n\n"  # a comment line keeps proxies from closing an idle stream
            services.jobs.wait_for_change(job, seen, _EVENT_WAIT_SECONDS)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers=SSE_HEADERS)


@router.get("/jobs/{job_id}/content", responses={200: {"content": {"video/mp4": {}}}, **ERRORS})
def job_content(job_id: str, services: ServicesDep, caller: CallerDep) -> Response:
    job = _job(services, job_id)
    if job.status != "succeeded" or job.result is None:
        raise ApiError(409, f"job {job_id} is {job.status}" + (f": {job.error}" if job.error else ""),
                       "conflict_error")
    return Response(job.result, media_type=job.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{job.id}.mp4"'})
