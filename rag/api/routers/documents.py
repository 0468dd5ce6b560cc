"""Documents of a collection: list (paged), upload (ingested while the service keeps answering), delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi import Path as Path_
from starlette.concurrency import run_in_threadpool

from rag.api import actions
from rag.api.deps import CallerDep, ServicesDep
from rag.api.schemas import CollectionName, DocumentPage, DocumentText, ErrorResponse, UploadResult

router = APIRouter(prefix="/documents", tags=["documents"])

ERRORS = {code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 413, 415, 422)}

CollectionQuery = Annotated[CollectionName, Query(description="The collection.")]


@router.get("", response_model=DocumentPage, responses=ERRORS)
def list_documents(services: ServicesDep, caller: CallerDep, collection: CollectionQuery = "default",
                   offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50) -> DocumentPage:
    """One page of the collection's documents, ordered by source path."""
    return actions.list_documents(services, caller, collection, offset, limit)


@router.post("", status_code=201, response_model=UploadResult, responses=ERRORS)
async def upload_document(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    file: Annotated[UploadFile, File(description="A .md, .txt, .rst, .html, .pdf or .docx file.")],
    collection: Annotated[CollectionName, Form()] = "default",
    groups: Annotated[str | None, Form(max_length=2000, description="Comma-separated groups that may read it "
                                       "(default: the key's own groups; public for a key that reads everything).")
                      ] = None,
) -> UploadResult:
    """Store the file under a name of our own and ingest it; questions keep being answered from the
    previous snapshot until this one is committed."""
    caller.check(collection)
    limit = int(services.settings.api.max_upload_mb * 1024 * 1024)
    actions.check_upload(file.filename or "", file.content_type or "")  # before reading: a wrong type costs nothing
    content = await file.read(limit + 1)
    chosen = None if groups is None else [g.strip() for g in groups.split(",") if g.strip()]
    return await run_in_threadpool(actions.upload, services, caller, collection, file.filename or "", content,
                                   file.content_type or "", chosen)


@router.get("/{doc_id}", response_model=DocumentText, responses=ERRORS)
def get_document(doc_id: Annotated[str, Path_(max_length=200)], services: ServicesDep, caller: CallerDep,
                 collection: CollectionQuery = "default",
                 start: Annotated[int | None, Query(ge=0, description="Only the span from this offset...")] = None,
                 end: Annotated[int | None, Query(ge=0, description="... to this one (a citation's).")] = None,
                 ) -> DocumentText:
    """A document's extracted text (the text citations' `start` / `end` offsets point into), or a span of it."""
    return actions.get_document(services, caller, doc_id, collection, start, end)


@router.delete("/{doc_id}", status_code=204, responses=ERRORS)
def delete_document(doc_id: Annotated[str, Path_(max_length=200)], services: ServicesDep, caller: CallerDep,
                    collection: CollectionQuery = "default") -> Response:
    """Remove a document (and its uploaded file) from the collection."""
    actions.delete_document(services, caller, doc_id, collection)
    return Response(status_code=204)
