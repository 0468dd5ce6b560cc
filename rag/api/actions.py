"""What the HTTP routes and the MCP tools do, written once: each takes the services, the caller (whose key decides
the collections it may use) and a request, and returns the response model both interfaces publish."""

from __future__ import annotations

import secrets
from pathlib import Path

from ingest.loaders import LOADERS
from index.store import IndexReader
from rag.api.errors import ApiError
from rag.api.keys import KeyStore, find_key
from rag.api.schemas import (
    AskRequest, DocumentOut, DocumentPage, DocumentText, PageSpanOut, PassageOut, SearchRequest, SearchResult,
    UploadResult,
)
from rag.api.services import Services
from rag.chain import AskChain, AskResponse
from rag.retriever import MetadataFilter

# Content types a client may send for each readable extension (octet-stream and none: "unknown").
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
ANY_CONTENT_TYPE = {"", "application/octet-stream", "binary/octet-stream"}


class Caller:
    """Who is calling: their key (None when the service needs none), the collections it opens, the groups whose
    documents it may read (None: every document), and whether it manages keys."""

    def __init__(self, key: str | None, collections: frozenset[str] | None, groups: frozenset[str] | None = None,
                 admin: bool = False) -> None:
        self.key = key
        self.collections = collections  # None: every collection
        self.groups = groups
        self.admin = admin

    def check(self, collection: str) -> None:
        if self.collections is not None and collection not in self.collections:
            raise ApiError(403, f"this API key may not use the collection {collection!r}", "permission_error")

    def hidden(self, reader: IndexReader) -> frozenset[str]:
        """The documents of this index snapshot the caller may not read."""
        return frozenset() if self.groups is None else reader.hidden_documents(self.groups)


def caller_for_key(keys: dict[str, list[str]] | list[str] | None, store: KeyStore | None, given: str | None) -> Caller:
    """The caller a key makes: a key of RAG_API__KEYS (a list of keys for everything, or key → collections; "*"
    keys also manage keys) or of the key file (its groups, collections, admin). With neither configured every
    caller reads everything and manages nothing; otherwise a missing or unknown key is a 401."""
    static = {key: ["*"] for key in keys} if isinstance(keys, list) else (keys or {})
    entries = store.entries() if store is not None else []  # one look at the key file per request
    if not static and not entries:
        return Caller(None, None)
    if not given:
        raise ApiError(401, "an API key is required: send 'Authorization: Bearer <key>'", "authentication_error")
    for key, collections in static.items():
        if secrets.compare_digest(given.encode(), key.encode()):
            everywhere = "*" in collections
            return Caller(key, None if everywhere else frozenset(collections), None, admin=everywhere)
    entry = find_key(entries, given)
    if entry is None:
        raise ApiError(401, "invalid API key", "authentication_error")
    collections = None if "*" in entry.collections else frozenset(entry.collections)
    return Caller(entry.id, collections, None if entry.admin else frozenset(entry.groups), admin=entry.admin)


def filters_for(caller: Caller, chain: AskChain, sources: list[str] | None = None,
                doc_ids: list[str] | None = None) -> MetadataFilter:
    """What a request may draw on: the documents it names, never those its caller may not read."""
    return MetadataFilter(sources=tuple(sources or ()), doc_ids=tuple(doc_ids) if doc_ids else None,
                          hidden=caller.hidden(chain.retriever.reader))


def search(services: Services, caller: Caller, request: SearchRequest) -> SearchResult:
    """The passages that best match the query (hybrid retrieval, no reader), with their spans and pages."""
    caller.check(request.collection)
    with services.collections.get(request.collection).chain() as chain:
        retriever = chain.retriever
        found = retriever.run(request.query, top_k=request.top_k,
                              filters=filters_for(caller, chain, request.sources, request.doc_ids)).passages
        passages = [PassageOut(doc_id=p.doc_id, source=p.source, title=p.title, heading=p.heading, start=p.start,
                               end=p.end, pages=retriever.pages(p.doc_id, p.start, p.end), text=p.text,
                               score=round(p.score, 6)) for p in found]
    return SearchResult(collection=request.collection, query=request.query, passages=passages)


def ask(services: Services, caller: Caller, request: AskRequest) -> AskResponse:
    """A cited answer from the collection, or "not found"."""
    caller.check(request.collection)
    with services.admit(request.mode), services.collections.get(request.collection).chain() as chain:
        response = chain.run(request.question, mode=request.mode, top_k=request.top_k,
                             filters=filters_for(caller, chain, request.sources, request.doc_ids))
    services.metrics.observe_chain(response)
    return response


def list_documents(services: Services, caller: Caller, collection: str, offset: int = 0,
                   limit: int = 50) -> DocumentPage:
    caller.check(collection)
    total, documents = services.collections.get(collection).documents(offset, limit, caller)
    return DocumentPage(collection=collection, total=total, offset=offset, limit=limit,
                        documents=[DocumentOut(**vars(d)) for d in documents])


def get_document(services: Services, caller: Caller, doc_id: str, collection: str, start: int | None = None,
                 end: int | None = None) -> DocumentText:
    """A document's extracted text, or the span `start:end` of it (a citation's), with where its pages are."""
    caller.check(collection)
    record = services.collections.get(collection).document(doc_id, caller)
    if record is None:
        raise ApiError(404, f"no document {doc_id!r} in the collection {collection!r}", "not_found_error")
    first, last = start or 0, len(record.text) if end is None else end
    if not 0 <= first <= last <= len(record.text):
        raise ApiError(422, f"the span {first}:{last} is not within the document's {len(record.text)} characters",
                       "invalid_request_error")
    pages = [PageSpanOut(**span) for span in record.structure.get("pages", [])]
    return DocumentText(doc_id=record.doc_id, source=record.source, kind=record.kind, title=record.title,
                        text=record.text[first:last], start=first, pages=pages)


def delete_document(services: Services, caller: Caller, doc_id: str, collection: str) -> None:
    caller.check(collection)
    if not services.collections.get(collection).delete(doc_id, caller):
        raise ApiError(404, f"no document {doc_id!r} in the collection {collection!r}", "not_found_error")


def check_upload(name: str, content_type: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix not in LOADERS:
        raise ApiError(415, f"unsupported file type {suffix or '(none)'}; supported: {', '.join(sorted(LOADERS))}",
                       "unsupported_media_type")
    media = content_type.split(";")[0].strip().lower()
    if media not in ANY_CONTENT_TYPE and media not in CONTENT_TYPES.get(suffix, set()):
        raise ApiError(415, f"content type {media!r} does not match a {suffix} file", "unsupported_media_type")


def upload(services: Services, caller: Caller, collection: str, name: str, content: bytes,
           content_type: str = "", groups: list[str] | None = None) -> UploadResult:
    """Store the file under a name of our own and ingest it; questions keep being answered from the previous
    snapshot until this one is committed. `groups` may read it (default: the uploader's own groups; none for a key
    that reads everything: public); a key may only give documents to groups it is in."""
    caller.check(collection)
    if groups is None:
        groups = sorted(caller.groups or ())
    outside = set(groups) - caller.groups if caller.groups is not None else set()
    if outside:
        raise ApiError(403, f"this API key may not give documents to the groups {', '.join(sorted(outside))}",
                       "permission_error")
    check_upload(name, content_type)
    limit = int(services.settings.api.max_upload_mb * 1024 * 1024)
    if len(content) > limit:
        raise ApiError(413, f"the file is larger than {services.settings.api.max_upload_mb:g} MB", "request_too_large")
    if not content:
        raise ApiError(422, "the file is empty", "invalid_request_error")
    target = services.collections.get(collection, create=True)
    path, report = target.add(name, content, groups)
    if report.failed:
        raise ApiError(422, f"could not read {Path(name).name}: {report.failed[0].error}", "invalid_request_error")
    return UploadResult(collection=collection, file=path.name, doc_ids=target.doc_ids_for(path),
                        ingested=report.ingested, skipped_unchanged=report.skipped_unchanged,
                        chunks_added=report.chunks_added, seconds=round(report.seconds, 3))
