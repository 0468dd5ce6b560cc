"""Text tasks beside question answering: `POST /v1/classify` and `POST /v1/summarize`."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from rag.api.deps import CallerDep, ServicesDep
from rag.api.schemas import ClassifyRequest, ClassifyResponse, ErrorResponse, SummarizeRequest, SummarizeResponse

router = APIRouter(prefix="/v1", tags=["tasks"])


@router.post("/classify", response_model=ClassifyResponse,
             responses={code: {"model": ErrorResponse} for code in (401, 422, 502, 503)})
def classify(body: ClassifyRequest, services: ServicesDep, caller: CallerDep) -> ClassifyResponse:
    """A label per text (from `labels`) with its score, and how many texts got each label."""
    result = services.classifier(body.texts, body.labels)
    return ClassifyResponse(**asdict(result))


@router.post("/summarize", response_model=SummarizeResponse,
             responses={code: {"model": ErrorResponse} for code in (401, 422, 502, 503)})
def summarize(body: SummarizeRequest, services: ServicesDep, caller: CallerDep) -> SummarizeResponse:
    """A summary of at most `max_sentences` sentences (extractive ones cite their offsets in the text)."""
    result = services.summarizer(body.text, max_sentences=body.max_sentences)
    return SummarizeResponse(**asdict(result))
