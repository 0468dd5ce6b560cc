"""`POST /ask`: the same JSON as `rag ask --json`."""

from __future__ import annotations

from fastapi import APIRouter

from rag.api.deps import CallerDep, ServicesDep
from rag.api.schemas import AskRequest, ErrorResponse
from rag.chain import AskResponse
from rag.retriever import MetadataFilter

router = APIRouter(tags=["answers"])


@router.post("/ask", response_model=AskResponse, responses={
    401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
    422: {"model": ErrorResponse}, 429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})
def ask(body: AskRequest, services: ServicesDep, caller: CallerDep) -> AskResponse:
    """Answer a question from a collection, with citations to exact spans, or say it is not in the documents."""
    caller.check(body.collection)
    filters = MetadataFilter(sources=tuple(body.sources or ()), doc_ids=tuple(body.doc_ids) if body.doc_ids else None)
    with services.admit(body.mode), services.collections.get(body.collection).chain() as chain:
        response = chain.run(body.question, mode=body.mode, top_k=body.top_k, filters=filters)
    services.metrics.observe_chain(response)
    return response
