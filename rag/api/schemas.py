"""Request and response bodies of the HTTP API (the chat ones follow the OpenAI schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.chain import MAX_QUESTION_CHARS, Citation

CollectionName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="The collection to search.")]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    mode: Literal["extractive", "generative"] | None = Field(None, description="Reader (default: RAG_DEFAULT_MODE).")
    top_k: int | None = Field(None, ge=1, le=50, description="Passages handed to the reader.")
    collection: CollectionName = "default"
    sources: list[Annotated[str, Field(min_length=1, max_length=500)]] | None = Field(
        None, max_length=20, description="Only documents whose path matches one of these globs.")
    doc_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(None, max_length=200)


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
    notes: list[str]


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
    rag: RagInfo


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


class DocumentText(BaseModel):
    doc_id: str
    source: str
    kind: str
    title: str | None
    text: str = Field(description="The extracted text; citation offsets index into it.")


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
