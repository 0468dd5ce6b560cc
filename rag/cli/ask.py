"""`rag search` and `rag ask`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rag.cli.shared import (
    BackendOption, DocIdOption, IndexOption, JsonOption, SourceOption, app, err, out, settings_with, user_errors,
)
from rag.settings import Settings


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    index: IndexOption = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=100, help="Passages to return.")] = 5,
    source: SourceOption = None,
    doc_id: DocIdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hybrid (dense + BM25) retrieval: the passages that best match QUERY, with their spans."""
    from dataclasses import asdict

    from rag.components import build_embedder, build_retriever, build_store
    from rag.retriever import MetadataFilter

    if not query.strip():
        err.print("[red]error:[/red] the query is empty")
        raise typer.Exit(2)
    with user_errors():
        settings = Settings()
        reader = build_store(settings, index).reader()
    with reader, user_errors():
        filters = MetadataFilter(tuple(source or ()), tuple(doc_id) if doc_id else None)
        result = build_retriever(settings, reader, build_embedder(settings), top_k=top_k).run(query, filters=filters)
    if as_json:
        print(json.dumps({"passages": [asdict(p) for p in result.passages], "timings_ms": result.timings_ms},
                         ensure_ascii=False))
        return
    if not result.passages:
        out.print("No passages found (is the index empty?)")
    for rank, passage in enumerate(result.passages, start=1):
        where = passage.heading or passage.title or ""
        page = f" p.{passage.page}" if passage.page else ""
        out.print(f"[bold]{rank}.[/bold] {passage.source}{page} [{passage.start}:{passage.end}] [dim]{where}[/dim]")
        out.print("   " + passage.text[:300].replace("\n", " ") + ("…" if len(passage.text) > 300 else ""))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    index: IndexOption = None,
    mode: Annotated[str | None, typer.Option("--mode", help="extractive or generative (default: RAG_READER__DEFAULT_MODE).")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=50, help="Passages handed to the reader.")] = None,
    source: SourceOption = None,
    doc_id: DocIdOption = None,
    backend: BackendOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer QUESTION from the index, citing the exact spans it comes from (or say it is not there)."""
    from rag.components import build_chain, build_embedder, build_store
    from rag.retriever import MetadataFilter

    with user_errors():
        settings = settings_with({"index.backend": backend})
        reader = build_store(settings, index).reader()
    with reader, user_errors():
        chain = build_chain(settings, reader, build_embedder(settings))
        filters = MetadataFilter(tuple(source or ()), tuple(doc_id) if doc_id else None)
        response = chain.run(question, mode=mode, top_k=top_k, filters=filters)
    if as_json:
        print(response.model_dump_json())
        return
    out.print(f"[bold]{response.answer}[/bold]")
    for number, citation in enumerate(response.citations, start=1):
        pages = citation.pages
        where = (f", p. {pages[0]}" if len(pages) == 1 else f", pp. {pages[0]}-{pages[-1]}") if pages else ""
        out.print(f"  [{number}] {citation.source}{where} [{citation.start}:{citation.end}] score {citation.score:.2f}")
    for note in response.notes:
        err.print(f"[dim]note: {note}[/dim]")
