"""Request and response bodies of the HTTP API (the chat ones follow the OpenAI schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.chain import MAX_QUESTION_CHARS, Citation

CollectionName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="The collection to search.")]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    mode: Literal["extractive", "generative"] | None = Field(None, description="Reader (default: RAG_READER__DEFAULT_MODE).")
    top_k: int | None = Field(None, ge=1, le=50, description="Passages handed to the reader.")
    collection: CollectionName = "default"
    sources: list[Annotated[str, Field(min_length=1, max_length=500)]] | None = Field(
        None, max_length=20, description="Only documents whose path matches one of these globs.")
    doc_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(None, max_length=200)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int = Field(5, ge=1, le=50, description="Passages to return.")
    collection: CollectionName = "default"
    sources: list[Annotated[str, Field(min_length=1, max_length=500)]] | None = Field(
        None, max_length=20, description="Only documents whose path matches one of these globs.")
    doc_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(None, max_length=200)


class PassageOut(BaseModel):
    doc_id: str
    source: str
    title: str | None
    heading: str | None
    start: int = Field(description="Offset of the passage in the document's extracted text (GET /documents/{doc_id}).")
    end: int
    pages: list[int] = Field(description="The pages (or slides) the passage is on; [] for a source without pages.")
    text: str
    score: float = Field(description="Fused dense + BM25 score: higher is better, comparable within one search.")


class SearchResult(BaseModel):
    collection: str
    query: str
    passages: list[PassageOut]


class ErrorBody(BaseModel):
    message: str
    type: str
    setting: str | None = None
    model: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# -- OpenAI chat completions -------------------------------------------------------------------


class TextPart(BaseModel):
    type: Literal["text"]
    text: str = Field(max_length=MAX_QUESTION_CHARS * 4)


class ImageURL(BaseModel):
    url: str = Field(max_length=20_000_000)


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageURL


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Annotated[TextPart | ImagePart, Field(discriminator="type")]] | None = None
    name: str | None = Field(None, max_length=64)

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # clients send more OpenAI fields than we use

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    n: int | None = Field(None, ge=1, le=1, description="Only one choice is produced.")
    # Extensions (OpenAI SDKs pass them with `extra_body`):
    collection: CollectionName = "default"
    top_k: int | None = Field(None, ge=1, le=50)
    task: Literal["qa", "image", "caption", "video", "classify", "summarize", "complete"] | None = Field(
        None, description="What to do with the last message; unset: the router decides from its text and images.")
    labels: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None, min_length=2, max_length=20, description="Labels of a classify task (default: positive, negative).")

    def image_url(self) -> str | None:
        """The last image of the last user message, if it has one."""
        users = [m for m in self.messages if m.role == "user"]
        if not users or isinstance(users[-1].content, str) or users[-1].content is None:
            return None
        images = [part.image_url.url for part in users[-1].content if isinstance(part, ImagePart)]
        return images[-1] if images else None


class NumberedCitation(Citation):
    index: int = Field(description="The number the answer text cites it with, as [n].")


class RagInfo(BaseModel):
    """How the answer was found: the extension field next to the OpenAI ones."""

    abstained: bool
    confidence: float
    answer_type: str
    mode: str
    collection: str
    retrieval_query: str
    timings_ms: dict[str, float]
    notes: list[str] = Field(description="For operators (model stand-ins, dropped sentences...); also logged.")
    answer_html: str = Field("", description="The answer, with its [n] markers, rendered from Markdown to HTML "
                             "(raw HTML escaped) for pages that show it.")


class TaskInfo(BaseModel):
    """Which task served the request, why, and what it produced beside the text."""

    name: str
    reason: str
    images: list[str] = Field(default_factory=list, description="Base64 PNGs (task image).")
    job: str | None = Field(None, description="The job id of a video (task video): GET /v1/jobs/{id}.")
    result: dict | None = Field(None, description="The task's own result (classify, summarize).")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage = Field(default_factory=Usage)
    citations: list[NumberedCitation] = Field(default_factory=list)
    rag: RagInfo | None = Field(None, description="How a question was answered (task qa).")
    task: TaskInfo


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rag-service"
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- documents -----------------------------------------------------------------------------------


class DocumentOut(BaseModel):
    doc_id: str
    source: str
    kind: str
    title: str | None
    size: int
    chunks: int


class PageSpanOut(BaseModel):
    page: int = Field(description="Page (or slide) number, from 1.")
    start: int = Field(description="Offset of the page's text in the document text.")
    end: int


class DocumentText(BaseModel):
    doc_id: str
    source: str
    kind: str
    title: str | None
    text: str = Field(description="The extracted text (or the asked span of it); citation offsets index into the "
                      "whole text.")
    start: int = Field(0, description="Offset of `text` in the whole extracted text: 0 unless a span was asked for.")
    pages: list[PageSpanOut] = Field(default_factory=list,
                                     description="Where each page (or slide) is in `text`; empty without pages.")


class CollectionList(BaseModel):
    collections: list[str]


class DocumentPage(BaseModel):
    collection: str
    total: int
    offset: int
    limit: int
    documents: list[DocumentOut]


class UploadResult(BaseModel):
    collection: str
    file: str
    doc_ids: list[str]
    ingested: int
    skipped_unchanged: int
    chunks_added: int
    seconds: float


class Health(BaseModel):
    status: Literal["ok", "starting", "error"]
    ready: bool
    error: str | None = None
    collections: dict[str, dict]


# -- text tasks ---------------------------------------------------------------------------------


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[Annotated[str, Field(min_length=1, max_length=10_000)]] = Field(min_length=1, max_length=200)
    labels: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=2, max_length=50)


class ClassifiedText(BaseModel):
    text: str
    label: str
    score: float


class ClassifyResponse(BaseModel):
    results: list[ClassifiedText]
    counts: dict[str, int]
    method: str
    notes: list[str] = Field(default_factory=list)


class SummarizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=200_000)
    max_sentences: int = Field(3, ge=1, le=20)


class SummarySentenceOut(BaseModel):
    start: int
    end: int
    text: str


class SummarizeResponse(BaseModel):
    summary: str
    sentences: list[SummarySentenceOut] = Field(description="Extractive summaries: each sentence's offsets in the text.")
    method: str
    notes: list[str] = Field(default_factory=list)


# -- plain completions (`POST /v1/completions`, OpenAI schema) --
class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    prompt: str | list[str] = Field(description="The text to continue (a list must hold exactly one prompt).")
    max_tokens: int = Field(16, ge=1, le=2048)
    temperature: float = Field(1.0, ge=0, le=2, description="0: greedy.")
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Same seed and settings, same text.")
    stop: str | list[str] | None = Field(None, description="Up to 4 strings that end the text.")
    stream: bool = False
    n: int | None = Field(None, ge=1, le=1, description="Only one choice is produced.")


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None = "stop"


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage = Field(default_factory=Usage)


# -- images (`POST /v1/images/generations`, OpenAI schema with extensions) --
ImageSize = Annotated[str, Field(pattern=r"^\d{2,4}x\d{2,4}$", description="WIDTHxHEIGHT, multiples of 8.")]


class ImageGenerationRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt: str = Field(min_length=1, max_length=4000)
    model: str | None = Field(None, max_length=200, description="Ignored: the service's RAG_MEDIA__IMAGE_MODEL draws.")
    n: int = Field(1, ge=1, le=4)
    size: ImageSize = "512x512"
    response_format: Literal["b64_json"] = "b64_json"
    # Extensions:
    negative_prompt: str | None = Field(None, max_length=4000)
    steps: int | None = Field(None, ge=1, le=100)
    guidance_scale: float | None = Field(None, ge=0, le=30)
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Same seed and settings, same image.")


class ImageData(BaseModel):
    b64_json: str
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]
    # Extensions: how to draw the same image again.
    model: str
    seed: int
    steps: int
    guidance_scale: float


# -- captions (`POST /v1/images/captions`) --
class CaptionRequest(BaseModel):
    image: str = Field(min_length=1, max_length=20_000_000, description="A data URL or base64 image (PNG, JPEG...).")
    prompt: str | None = Field(None, max_length=500, description="Text the caption continues (GIT, BLIP).")
    heatmap: bool = Field(False, description="Also return a PNG of where the model looked for each word.")


class CaptionResponse(BaseModel):
    caption: str
    words: list[str]
    model: str
    heatmap_png: str | None = Field(None, description="Base64 PNG: the image overlaid with each word's attention.")


# -- video jobs (`POST /v1/videos`, `GET /v1/jobs/{id}`) --
class VideoRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=4000)
    negative_prompt: str | None = Field(None, max_length=4000)
    frames: int | None = Field(None, ge=1, le=64)
    steps: int | None = Field(None, ge=1, le=100)
    guidance_scale: float | None = Field(None, ge=0, le=30)
    size: ImageSize | None = None
    seed: int | None = Field(None, ge=0, le=2**31 - 1)


class JobOut(BaseModel):
    id: str
    object: Literal["job"] = "job"
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    step: int
    total_steps: int
    created_at: float
    finished_at: float | None
    error: str | None
    content_url: str | None = Field(None, description="Where the finished output is (GET).")
    details: dict
