"""`POST /v1/chat/completions` and `GET /v1/models` in the OpenAI schema, answered by the chain.

`model` picks the reader: `extractive`, or `generative` (also reachable by the
configured generator's own name). The answer text carries `[n]` markers, and
the citations travel beside it in the `citations` extension field (numbered
the same way) with the chain's details in `rag`; a streamed answer sends them
in its last chunk. A follow-up question is rewritten with the earlier user
turns before retrieval, so "When was it built?" still finds the lighthouse.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from rag.api.actions import Caller, filters_for
from rag.api.admission import SSE_HEADERS, stream_holding
from rag.api.deps import CallerDep, ServicesDep, SettingsDep
from rag.api.errors import ApiError
from rag.api.markdown import answer_html
from rag.api.routers.chat_tasks import TASK_HANDLERS
from rag.api.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    Choice,
    ErrorResponse,
    ModelCard,
    ModelList,
    NumberedCitation,
    RagInfo,
    TaskInfo,
)
from index.store import MissingIndexError
from rag.chain import AskResponse
from rag.settings import Settings

router = APIRouter(prefix="/v1", tags=["openai"])

ERRORS = {401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
          422: {"model": ErrorResponse}, 429: {"model": ErrorResponse}, 502: {"model": ErrorResponse},
          503: {"model": ErrorResponse}}

# Words that point back to an earlier turn: such a question is retrieved together with the previous one.
_BACK_REFERENCE = re.compile(
    r"\b(it|its|it's|they|them|their|this|that|these|those|he|him|his|she|her|there|then|one|ones)\b"
    r"|[它他她其该这那此]", re.IGNORECASE)
_SHORT_FOLLOW_UP_WORDS = 4


def available_models(settings: Settings) -> dict[str, tuple[str, str]]:
    """Model id → (reader mode, description)."""
    generator = settings.openai.model if settings.generator.backend == "openai" else settings.generator.model
    where = "an OpenAI-compatible API" if settings.generator.backend == "openai" else "a local model"
    models = {
        "extractive": ("extractive", f"exact answer spans from the documents ({settings.reader.model})"),
        "generative": ("generative", f"answers written by {generator} ({where}) from the documents, cited"),
    }
    models.setdefault(generator, ("generative", f"the generative reader's model, {where}"))
    # The default mode's reader first: clients (the chat page) preselect the first model listed.
    return dict(sorted(models.items(), key=lambda item: item[1][0] != settings.reader.default_mode))


def retrieval_query(messages: list[ChatMessage]) -> tuple[str, str, list[dict[str, str]]]:
    """(question, what to retrieve with, earlier turns) from a chat: the last user message is the question;
    a follow-up that refers back (a pronoun) or is very short is retrieved together with the previous user turn."""
    turns = [m for m in messages if m.role in ("user", "assistant") and m.text().strip()]
    if not turns or turns[-1].role != "user":
        raise ApiError(422, "the last message must be a user message with text", "invalid_request_error")
    question = turns[-1].text().strip()
    history = [{"role": m.role, "content": m.text().strip()} for m in turns[:-1]]
    earlier = [m["content"] for m in history if m["role"] == "user"]
    query = question
    if earlier and (_BACK_REFERENCE.search(question) or len(question.split()) <= _SHORT_FOLLOW_UP_WORDS):
        query = f"{earlier[-1]} {question}"
    return question, query, history


def _numbered(response: AskResponse) -> tuple[str, list[NumberedCitation]]:
    """The answer with `[n]` markers (generated answers already carry them) and the citations numbered alike."""
    citations = [NumberedCitation(index=i, **c.model_dump()) for i, c in enumerate(response.citations, start=1)]
    text = response.answer
    if citations and not response.abstained and response.answer_type != "generated":
        text = f"{text} [1]"
    return text, citations


def _rag_info(response: AskResponse, collection: str, query: str, text: str) -> RagInfo:
    return RagInfo(abstained=response.abstained, confidence=response.confidence, answer_type=response.answer_type,
                   mode=response.mode, collection=collection, retrieval_query=query, timings_ms=response.timings_ms,
                   notes=response.notes, answer_html=answer_html(text))


@router.get("/models", response_model=ModelList, responses=ERRORS)
def list_models(settings: SettingsDep, caller: CallerDep) -> ModelList:
    """The readers a chat request can name in `model`."""
    return ModelList(data=[ModelCard(id=name, description=description)
                           for name, (_, description) in available_models(settings).items()])


@router.post("/chat/completions", response_model=ChatCompletion, responses=ERRORS)
def chat_completions(body: ChatRequest, services: ServicesDep, caller: CallerDep):
    """Answer the last user message from the documents; `stream: true` sends server-sent events."""
    models = available_models(services.settings)
    if body.model not in models:
        raise ApiError(404, f"unknown model {body.model!r}; available: {', '.join(models)}", "not_found_error")
    caller.check(body.collection)
    last = next((m for m in reversed(body.messages) if m.role == "user"), None)
    last_text = last.text() if last else ""
    route = services.router.route(last_text, has_image=body.image_url() is not None, task=body.task)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if route.task != "qa":
        content, info = TASK_HANDLERS[route.task](services, body, last_text)
        info = info.model_copy(update={"name": route.task, "reason": route.reason})
        if body.stream:
            return StreamingResponse(_task_stream(body.model, content, info, completion_id, created),
                                     media_type="text/event-stream",
                                     headers=SSE_HEADERS)
        return ChatCompletion(id=completion_id, created=created, model=body.model,
                              choices=[Choice(message=AssistantMessage(content=content))], task=info)
    mode = models[body.model][0]
    question, query, history = retrieval_query(body.messages)
    collection = services.collections.get(body.collection)
    if not collection.exists:
        raise MissingIndexError(collection.index_dir)  # before the stream starts: a 404, not an error event
    qa = TaskInfo(name="qa", reason=route.reason)
    if body.stream:
        slot = ExitStack()
        slot.enter_context(services.admit(mode))
        return stream_holding(
            slot, _stream(services, collection, caller, body, mode, question, query, history, completion_id, created,
                          qa))
    with services.admit(mode), collection.chain() as chain:
        response = chain.run(question, mode=mode, top_k=body.top_k, retrieval_query=query, history=history,
                             filters=filters_for(caller, chain))
    services.metrics.observe_chain(response)
    text, citations = _numbered(response)
    return ChatCompletion(id=completion_id, created=created, model=body.model,
                          choices=[Choice(message=AssistantMessage(content=text))], citations=citations,
                          rag=_rag_info(response, body.collection, query, text), task=qa)


def _event(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _task_stream(model: str, content: str, info: TaskInfo, completion_id: str, created: int) -> Iterator[str]:
    """A task's reply as chat chunks: it is whole at once, so one content chunk, then the `task` field."""
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        return _event({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    yield chunk({"content": content})
    yield chunk({}, "stop", task=info.model_dump())
    yield "data: [DONE]\n\n"


def _stream(services, collection, caller: Caller, body: ChatRequest, mode: str, question: str, query: str,
            history: list[dict[str, str]], completion_id: str, created: int, qa: TaskInfo) -> Iterator[str]:
    """OpenAI `chat.completion.chunk` events: the role, the text deltas, then a last chunk with
    `finish_reason`, the citations and `rag`; then `[DONE]`. Errors mid-stream arrive as an `error` event."""
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        return _event({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                       "model": body.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                       **extra})

    yield chunk({"role": "assistant", "content": ""})
    try:
        with collection.chain() as chain:
            streamed: list[str] = []
            for event in chain.stream(question, mode=mode, top_k=body.top_k, retrieval_query=query, history=history,
                                      filters=filters_for(caller, chain)):
                if isinstance(event, str):
                    if event:
                        streamed.append(event)
                        yield chunk({"content": event})
                    continue
                response = event
    except Exception as exc:  # noqa: BLE001 - the status line is sent: report the failure in the stream
        kind = type(exc).__name__
        yield _event({"error": {"message": str(exc), "type": kind}})
        yield "data: [DONE]\n\n"
        return
    services.metrics.observe_chain(response)
    text, citations = _numbered(response)
    full = "".join(streamed)
    if text.startswith(full) and len(text) > len(full):
        yield chunk({"content": text[len(full):]})  # e.g. the extractive answer's [1]
    yield chunk({}, "stop", citations=[c.model_dump() for c in citations],
                rag=_rag_info(response, body.collection, query, text).model_dump(), task=qa.model_dump())
    yield "data: [DONE]\n\n"
