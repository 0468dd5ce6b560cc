"""Documents of a collection: list (paged), upload (ingested while the service keeps answering), delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi import Path as Path_
from starlette.concurrency import run_in_threadpool

from ingest.loaders import LOADERS
from rag.api.deps import CallerDep, ServicesDep
from rag.api.errors import ApiError
from rag.api.schemas import (CollectionName, DocumentOut, DocumentPage, DocumentText, ErrorResponse, PageSpanOut,
                             UploadResult)

router = APIRouter(prefix="/documents", tags=["documents"])

# Content types a browser or client may send for each readable extension (octet-stream: "unknown").
CONTENT_TYPES: dict[str, set[str]] = {
    ".md": {"text/markdown", "text/x-markdown", "text/plain"},
    ".markdown": {"text/markdown", "text/x-markdown", "text/plain"},
    ".txt": {"text/plain"},
    ".text": {"text/plain"},
    ".rst": {"text/x-rst", "text/prs.fallenstein.rst", "text/plain"},
    ".html": {"text/html", "application/xhtml+xml"},
    ".htm": {"text/html", "application/xhtml+xml"},
    ".pdf": {"application/pdf", "application/x-pdf"},
    ".docx": {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/zip"},
    ".csv": {"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"},
    ".tsv": {"text/tab-separated-values", "text/plain"},
    ".xlsx": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/zip"},
    ".pptx": {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "application/zip"},
    ".epub": {"application/epub+zip", "application/zip"},
    ".png": {"image/png"},
    ".jpg": {"image/jpeg"},
    ".jpeg": {"image/jpeg"},
    ".tif": {"image/tiff"},
    ".tiff": {"image/tiff"},
}
ANY = {"", "application/octet-stream", "binary/octet-stream"}
ERRORS = {code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 413, 415, 422)}

CollectionQuery = Annotated[CollectionName, Query(description="The collection.")]


@router.get("", response_model=DocumentPage, responses=ERRORS)
def list_documents(services: ServicesDep, caller: CallerDep, collection: CollectionQuery = "default",
                   offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50) -> DocumentPage:
    """One page of the collection's documents, ordered by source path."""
    caller.check(collection)
    total, documents = services.collections.get(collection).documents(offset, limit)
    return DocumentPage(collection=collection, total=total, offset=offset, limit=limit,
                        documents=[DocumentOut(**vars(d)) for d in documents])


def _check_type(name: str, content_type: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix not in LOADERS:
        raise ApiError(415, f"unsupported file type {suffix or '(none)'}; supported: {', '.join(sorted(LOADERS))}",
                       "unsupported_media_type")
    media = content_type.split(";")[0].strip().lower()
    if media not in ANY and media not in CONTENT_TYPES.get(suffix, set()):
        raise ApiError(415, f"content type {media!r} does not match a {suffix} file", "unsupported_media_type")


@router.post("", status_code=201, response_model=UploadResult, responses=ERRORS)
async def upload_document(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    file: Annotated[UploadFile, File(description="A .md, .txt, .rst, .html, .pdf or .docx file.")],
    collection: Annotated[CollectionName, Form()] = "default",
) -> UploadResult:
    """Store the file under a name of our own and ingest it; questions keep being answered from the
    previous snapshot until this one is committed."""
    caller.check(collection)
    limit = int(services.settings.api.max_upload_mb * 1024 * 1024)
    name = file.filename or ""
    _check_type(name, file.content_type or "")
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise ApiError(413, f"the file is larger than {services.settings.api.max_upload_mb:g} MB", "request_too_large")
    if not content:
        raise ApiError(422, "the file is empty", "invalid_request_error")
    target = services.collections.get(collection, create=True)
    path, report = await run_in_threadpool(target.add, name, content)
    if report.failed:
        raise ApiError(422, f"could not read {Path(name).name}: {report.failed[0].error}", "invalid_request_error")
    doc_ids = await run_in_threadpool(target.doc_ids_for, path)
    return UploadResult(collection=collection, file=path.name, doc_ids=doc_ids, ingested=report.ingested,
                        skipped_unchanged=report.skipped_unchanged, chunks_added=report.chunks_added,
                        seconds=round(report.seconds, 3))


@router.get("/{doc_id}", response_model=DocumentText, responses=ERRORS)
def get_document(doc_id: Annotated[str, Path_(max_length=200)], services: ServicesDep, caller: CallerDep,
                 collection: CollectionQuery = "default") -> DocumentText:
    """A document's extracted text: the text citations' `start` / `end` offsets point into."""
    caller.check(collection)
    record = services.collections.get(collection).document(doc_id)
    if record is None:
        raise ApiError(404, f"no document {doc_id!r} in the collection {collection!r}", "not_found_error")
    pages = [PageSpanOut(**span) for span in record.structure.get("pages", [])]
    return DocumentText(doc_id=record.doc_id, source=record.source, kind=record.kind, title=record.title,
                        text=record.text, pages=pages)


@router.delete("/{doc_id}", status_code=204, responses=ERRORS)
def delete_document(doc_id: Annotated[str, Path_(max_length=200)], services: ServicesDep, caller: CallerDep,
                    collection: CollectionQuery = "default") -> Response:
    """Remove a document (and its uploaded file) from the collection."""
    caller.check(collection)
    if not services.collections.get(collection).delete(doc_id):
        raise ApiError(404, f"no document {doc_id!r} in the collection {collection!r}", "not_found_error")
    return Response(status_code=204)
