"""The `rag` command line: ingest, search, ask, serve, eval, finetune, and the generators (image, caption, video, complete)."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from pydantic import ValidationError

from generators.resolve import ModelUnavailableError
from generators.text_generators import GeneratorError
from index.store import BackendMismatchError, IndexLockedError, MissingIndexError
from rag.settings import Settings

app = typer.Typer(help="Question answering over your own documents, with cited answers.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()

IndexOption = Annotated[
    Path | None, typer.Option("--index", help="Index directory (default: $RAG_INDEX_DIR or ./.rag).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BackendOption = Annotated[
    Literal["faiss", "milvus"] | None,
    typer.Option("--backend", help="Where the vectors live: faiss or milvus (default: $RAG_BACKEND, faiss)."),
]
SourceOption = Annotated[
    list[str] | None,
    typer.Option("--source", help='Only documents whose path matches this glob, e.g. "docs/*.md" (repeatable).'),
]
WorkOption = Annotated[Path, typer.Option("--work", help="Where the ingested corpus is kept between runs.")]
BaselineOption = Annotated[
    Path | None, typer.Option("--baseline", exists=True, dir_okay=False, help="A previous --json/--out summary to compare with.")
]
MaxDropOption = Annotated[
    float, typer.Option("--max-drop", min=0.0, help="With --baseline: exit 1 if a quality metric falls by more than this.")
]
DocIdOption = Annotated[list[str] | None, typer.Option("--doc-id", help="Only these documents (repeatable).")]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Some libraries (bm25s) set their own loggers to DEBUG on import: filter at the handler.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.INFO if verbose else logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


@contextmanager
def _user_errors():
    """Known failures become one clear line and a non-zero exit, not a traceback."""
    try:
        yield
    except ValidationError as exc:
        problems = "; ".join(f"RAG_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        err.print(f"[red]error:[/red] invalid setting: {problems}")
        raise typer.Exit(2) from None
    except (MissingIndexError, IndexLockedError, BackendMismatchError, ModelUnavailableError, GeneratorError,
            ValueError, ConnectionError, ImportError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


class _RateColumn(ProgressColumn):
    """files/s and chunks/s of the running ingest."""

    def __init__(self, started: float) -> None:
        super().__init__()
        self.started = started
        self.chunks = 0

    def render(self, task) -> Text:
        if task.fields.get("unit") != "files":
            return Text("")
        elapsed = max(time.perf_counter() - self.started, 1e-6)
        return Text(f"{task.completed / elapsed:.1f} files/s {self.chunks / elapsed:.1f} chunks/s")


def _progress_bar(label: str) -> Progress:
    """A progress bar with ETA on stderr, shown only on a terminal."""
    from rich.progress import TimeRemainingColumn

    return Progress(
        TextColumn(label), BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, disable=not err.is_terminal, transient=False,
    )


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    index: IndexOption = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove documents whose files are gone.")] = False,
    include: Annotated[list[str] | None, typer.Option("--include", help="Only files matching this glob.")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Skip files matching this glob.")] = None,
    lock_timeout: Annotated[float | None, typer.Option(help="Seconds to wait for another ingest.")] = None,
    engine: Annotated[
        Literal["local", "ray"] | None,
        typer.Option("--engine", help="local, or ray: read and embed on a Ray cluster (default: RAG_INGEST_ENGINE)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help='With --engine ray: "auto", "ray://host:10001"...; default: '
                     "$RAG_RAY_ADDRESS, else a local Ray instance for this run."),
    ] = None,
    embed_actors: Annotated[
        int | None, typer.Option("--embed-actors", min=1, help="With --engine ray: model actors (RAG_RAY_EMBED_ACTORS).")
    ] = None,
    backend: BackendOption = None,
    watch: Annotated[bool, typer.Option("--watch", help="Then keep watching PATHS: every change is ingested "
                                        "(added, changed, moved, deleted files), until Ctrl-C.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Read, chunk and embed files into the index; unchanged files are skipped."""
    from rag.components import build_ingest_pipeline, build_store

    with _user_errors():
        settings = Settings()
    overrides = {}
    if include:
        overrides["include"] = include
    if exclude:
        overrides["exclude"] = [*settings.exclude, *exclude]
    if lock_timeout is not None:
        overrides["lock_timeout"] = lock_timeout
    if engine is not None:
        overrides["ingest_engine"] = engine
    if ray_address is not None:
        overrides["ray_address"] = ray_address
    if embed_actors is not None:
        overrides["ray_embed_actors"] = embed_actors
    if backend is not None:
        overrides["backend"] = backend
    settings = settings.model_copy(update=overrides)

    started = time.perf_counter()
    rate = _RateColumn(started)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"), rate, TimeElapsedColumn(),
        console=err, disable=not err.is_terminal, transient=False,
    )
    task = progress.add_task("ingesting", total=None, unit="files")
    # A second bar while a long PDF or a scanned TIFF is read (OCR can take seconds a page).
    pages = progress.add_task("", total=None, unit="pages", visible=False)

    def on_progress(update) -> None:
        rate.chunks = update.chunks_done
        progress.update(task, completed=update.files_done, total=update.files_total)
        if update.reading is not None and update.pages_total > 1:
            progress.update(pages, description=f"  {Path(update.reading).name}", completed=update.pages_done,
                            total=update.pages_total, visible=update.pages_done < update.pages_total)
        elif update.reading is None:
            progress.update(pages, visible=False)

    with _user_errors(), progress:
        store = build_store(settings, index)
        pipeline = build_ingest_pipeline(settings, store, on_progress=on_progress)
        report = pipeline.run(paths, prune=prune)
    _print_ingest_report(report, as_json)
    if watch:
        from ingest.watch import watch_folders

        err.print(f"watching {', '.join(map(str, paths))} (Ctrl-C stops)")
        with _user_errors():
            watch_folders(paths, lambda: pipeline.run(paths, prune=True), ignore=[store.root],
                          on_report=lambda synced: _print_ingest_report(synced, as_json))


def _print_ingest_report(report, as_json: bool) -> None:  # noqa: ANN001 - an IngestReport
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False), flush=True)
        return
    out.print(
        f"{report.files_seen} files seen: {report.ingested} ingested, {report.skipped_unchanged} unchanged, "
        f"{len(report.failed)} failed; {report.chunks_added} chunks added, {report.chunks_deleted} deleted "
        f"in {report.seconds:.1f} s"
    )
    for failure in report.failed:
        err.print(f"[yellow]skipped[/yellow] {failure.path}: {failure.error}")
    for part in report.partial:
        err.print(f"[yellow]partly read[/yellow] {part.path}: {part.error}")


@app.command()
def stats(index: IndexOption = None, backend: BackendOption = None, as_json: JsonOption = False) -> None:
    """Documents, chunks, fingerprint and backend of an index."""
    from rag.components import build_store

    with _user_errors():
        result = build_store(_settings(backend=backend), index).stats().to_dict()
    if as_json:
        print(json.dumps(result))
        return
    table = Table(show_header=False)
    for key, value in result.items():
        table.add_row(key, str(value))
    out.print(table)


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
    with _user_errors():
        settings = Settings()
        reader = build_store(settings, index).reader()
    with reader, _user_errors():
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
    mode: Annotated[str | None, typer.Option("--mode", help="extractive or generative (default: RAG_DEFAULT_MODE).")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=50, help="Passages handed to the reader.")] = None,
    source: SourceOption = None,
    doc_id: DocIdOption = None,
    backend: BackendOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer QUESTION from the index, citing the exact spans it comes from (or say it is not there)."""
    from rag.components import build_chain, build_embedder, build_store
    from rag.retriever import MetadataFilter

    with _user_errors():
        settings = _settings(backend=backend)
        reader = build_store(settings, index).reader()
    with reader, _user_errors():
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


@app.command()
def serve(
    index: IndexOption = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default: RAG_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (default: RAG_PORT, 8000).")] = None,
    backend: BackendOption = None,
    watch: Annotated[list[Path] | None, typer.Option(
        "--watch", help="A folder to keep the default collection in step with while serving (repeatable; "
        "default: RAG_WATCH).")] = None,
) -> None:
    """Serve the HTTP API (POST /ask, OpenAI-compatible /v1/chat/completions, /documents) and the chat page."""
    import uvicorn

    from rag.api.app import create_app

    with _user_errors():
        settings = _settings(backend=backend, index_dir=index, watch=watch or None)
    # One JSON line per request (with its request id) on stderr, whatever the CLI's log level.
    access = logging.getLogger("rag.api")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    err.print(f"serving {settings.index_dir} on http://{host or settings.host}:{port or settings.port} "
              "(chat page at /, API docs at /docs)")
    uvicorn.run(create_app(settings), host=host or settings.host, port=port if port is not None else settings.port,
                log_level="info", access_log=False)


def _settings(**overrides) -> Settings:
    """Settings from the environment, with the options given on the command line on top."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


index_app = typer.Typer(help="Manage an index: move its vectors between backends.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("migrate")
def index_migrate(
    to: Annotated[Literal["faiss", "milvus"], typer.Option("--to", help="The backend to move the vectors to.")],
    index: IndexOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy every vector into another backend (from the docstore: nothing is re-embedded) and switch to it.

    Afterwards set RAG_BACKEND (or pass --backend) to the new backend for ingest, ask and serve.
    """
    from rag.components import build_store

    with _user_errors():
        settings = _settings(backend=to, index_dir=index)
        store = build_store(settings)
        if not store.exists():
            raise MissingIndexError(store.root)
        started = time.perf_counter()
        with store.writer(lock_timeout=settings.lock_timeout) as writer:
            previous = writer.store.get_meta("backend") or "faiss"
            copied = writer.migrate()
    result = {"index": str(store.root), "from": previous, "to": to, "vectors": copied,
              "seconds": round(time.perf_counter() - started, 3)}
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"{copied} vectors copied from {previous} to {to} in {result['seconds']:.1f} s; "
                  f"now use RAG_BACKEND={to} (or --backend {to})")


eval_app = typer.Typer(help="Measure retrieval and answers on public benchmarks or your own data.",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("qa")
def eval_qa(
    squad: Annotated[Path, typer.Option("--squad", exists=True, dir_okay=False, help="A SQuAD-format JSON file.")],
    setting: Annotated[str, typer.Option("--setting", help="gold (reader on the right paragraph) or open (full chain).")] = "open",
    mode: Annotated[str | None, typer.Option("--mode", help="Reader: extractive or generative.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=5, max=50, help="Passages handed to the reader.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Only the first N questions (0 = all).")] = 0,
    work: WorkOption = Path(".rag-eval"),
    out: Annotated[Path | None, typer.Option("--out", help="Write the summary JSON and per-question JSONL here.")] = None,
    baseline: BaselineOption = None,
    max_drop: MaxDropOption = 0.01,
    as_json: JsonOption = False,
) -> None:
    """EM, F1, answer containment, recall@1/@5 of the gold paragraph, abstention rate and latency per stage."""
    from collections import Counter

    from generators.sentence_reader import SentenceReader
    from common.language import query_language
    from index.bm25 import analyze
    from rag.components import build_chain, build_embedder, build_extractive_reader, build_ingest_pipeline, build_store
    from rag.evaluation.qa import (
        eval_table, evaluate_gold, evaluate_open, load_squad, summarise, work_dir_for,
    )
    from rag.evaluation.report import store_result, write_records, write_report

    if setting not in ("gold", "open"):
        err.print(f"[red]error:[/red] --setting must be gold or open, not {setting!r}")
        raise typer.Exit(2)
    with _user_errors():
        settings = Settings()
        folder = work_dir_for(squad, work)
        items = load_squad(squad, folder / "docs" if setting == "open" else None)
        if limit:
            items = items[:limit]
        if not items:
            raise ValueError(f"{squad} holds no answerable questions")
        with _progress_bar(f"{setting} setting") as progress:
            task = progress.add_task("questions", total=len(items))

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done)

            if setting == "gold":
                embedder = build_embedder(settings)
                sentences = SentenceReader(embedder, analyze)
                reader, note = build_extractive_reader(settings, sentences)
                # As the chain does: questions in a language the reader was not trained for get the best sentence.
                language = Counter(query_language(item.question) for item in items).most_common(1)[0][0]
                if settings.reader_languages is not None and language not in settings.reader_languages:
                    reader, note = sentences, (f"the extractive reader serves {', '.join(settings.reader_languages)}, "
                                               f"not {language}: answers are the best supporting sentence")
                records = evaluate_gold(items, reader, on_progress=advance)
                notes, fingerprint, used_mode = [note] if note else [], None, "extractive"
            else:
                store = build_store(settings, folder / "index")
                pipeline = build_ingest_pipeline(settings, store)
                pipeline.run([folder / "docs"])
                with store.reader() as index:
                    chain = build_chain(settings, index, pipeline.embedder)
                    used_mode = mode or chain.default_mode
                    records = evaluate_open(items, chain, mode=used_mode, top_k=top_k, on_progress=advance)
                    notes, fingerprint = chain.notes, index.fingerprint
        report = summarise(records, file=str(squad), setting=setting, mode=used_mode, notes=notes,
                           fingerprint=fingerprint)
    stem = f"qa-{squad.stem}-{setting}-{used_mode}"
    table = eval_table(report, records)
    # Results are kept per pipeline version: the index fingerprint and the models that read and rerank.
    version = f"{fingerprint or 'gold'}|reader:{settings.reader_model}|reranker:{settings.reranker_model}"
    stored = store_result(work, version, stem, report.to_json(), table)
    if out is not None:
        write_report(table, report.to_json(), out, stem)
        write_records(records, out / f"{stem}.jsonl")
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        _gate(report.to_json(), baseline, max_drop)
        return
    table = Table(title=f"{squad.name} ({setting} setting, {used_mode})")
    for column in ("questions", "EM", "F1", "contains", "recall@1", "recall@5", "abstain", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    summary = report.to_json()
    table.add_row(str(report.questions), f"{report.em:.3f}", f"{report.f1:.3f}", f"{report.contains:.3f}",
                  "-" if report.recall_at_1 is None else f"{report.recall_at_1:.3f}",
                  "-" if report.recall_at_5 is None else f"{report.recall_at_5:.3f}",
                  f"{report.abstain_rate:.3f}", f"{summary['latency_ms_p50']:.1f}", f"{summary['latency_ms_p95']:.1f}")
    out_console = Console()
    out_console.print(table)
    for note in report.notes:
        err.print(f"[dim]note: {note}[/dim]")
    err.print(f"[dim]stored: {stored}[/dim]")
    _gate(report.to_json(), baseline, max_drop)


@eval_app.command("docqa")
def eval_docqa(
    questions: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A docqa JSON file of questions.")],
    docs: Annotated[list[Path], typer.Option("--docs", exists=True, help="Files or folders the questions are about (repeatable).")],
    mode: Annotated[str | None, typer.Option("--mode", help="Reader: extractive or generative (default: RAG_DEFAULT_MODE).")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=50, help="Passages handed to the reader.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Only the first N questions (0 = all).")] = 0,
    types: Annotated[list[str] | None, typer.Option("--type", help="Only questions of this type (repeatable).")] = None,
    work: WorkOption = Path(".rag-eval"),
    out: Annotated[Path | None, typer.Option("--out", help="Write the summary JSON, table, charts and per-question JSONL here.")] = None,
    baseline: BaselineOption = None,
    max_drop: MaxDropOption = 0.01,
    as_json: JsonOption = False,
) -> None:
    """Containment, key facts, citation hit (any / top-1), abstention, per-type scores, latency and first token."""
    from rag.evaluation.docqa import DOCQA_METRICS, run_docqa
    from rag.evaluation.report import store_result, write_records, write_report

    with _user_errors():
        with _progress_bar("docqa") as progress:
            task = progress.add_task("questions", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            run = run_docqa(questions, docs, work=work, mode=mode, top_k=top_k, limit=limit, types=types,
                            on_progress=advance)
    summary = run.summary
    stem = f"docqa-{questions.stem}-{summary['mode']}"
    stored = store_result(work, summary["fingerprint"], stem, summary, run.table)
    if out is not None:
        write_report(run.table, summary, out, stem)
        write_records(run.records, out / f"{stem}.jsonl")
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
        _gate(summary, baseline, max_drop)
        return
    table = Table(title=f"{questions.name} ({summary['mode']}, {summary['questions']} questions)")
    table.add_column("type")
    for column in DOCQA_METRICS:
        table.add_column(column, justify="right")
    rows = {"all": summary, **summary["per_type"]}
    for name, values in rows.items():
        table.add_row(name, *("-" if values.get(m) is None else f"{values[m]:.3f}" for m in DOCQA_METRICS))
    Console().print(table)
    Console().print(f"answer p50 {summary['latency_ms_p50']:.0f} ms, p90 {summary['latency_ms_p90']:.0f} ms; "
                    f"first token p50 {summary['first_token_ms_p50']:.0f} ms, p90 {summary['first_token_ms_p90']:.0f} ms; "
                    f"median answer {summary['median_answer_words']} words")
    for note in summary["notes"]:
        err.print(f"[dim]note: {note}[/dim]")
    err.print(f"[dim]stored: {stored}[/dim]")
    _gate(summary, baseline, max_drop)


def _gate(metrics: dict, baseline: Path | None, max_drop: float) -> None:
    """Exit 1 when a metric fell by more than `max_drop` against the baseline file."""
    if baseline is None:
        return
    from rag.evaluation.gate import load_baseline, regressions

    with _user_errors():
        dropped = regressions(metrics, load_baseline(baseline), max_drop)
    for regression in dropped:
        err.print(f"[red]regression:[/red] {regression}")
    if dropped:
        raise typer.Exit(1)



@eval_app.command("retrieval", context_settings={"allow_extra_args": True})
def eval_retrieval(
    ctx: typer.Context,
    beir: Annotated[Path, typer.Option("--beir", exists=True, file_okay=False, help="A BEIR-format folder.")],
    split: Annotated[str, typer.Option("--split", help="Which qrels/<split>.tsv to score against.")] = "test",
    retriever: Annotated[list[str] | None, typer.Option(
        "--retriever", help="dense, bm25 or hybrid; repeat or list several to compare them (default: hybrid).")] = None,
    rerank: Annotated[bool, typer.Option("--rerank", help="Also run each configuration reranked by the cross-encoder.")] = False,
    rerank_depth: Annotated[int | None, typer.Option(
        "--rerank-depth", min=1, help="Chunks the reranker rescores (default: RAG_RERANK_DEPTH).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Only the first N queries (0 = all).")] = 0,
    work: WorkOption = Path(".rag-eval"),
    out: Annotated[Path | None, typer.Option("--out", help="Write the summary JSON and per-query JSONL here.")] = None,
    baseline: BaselineOption = None,
    max_drop: MaxDropOption = 0.01,
    as_json: JsonOption = False,
) -> None:
    """nDCG@10, Recall@10/@100, MRR@10 and latency per query of dense, BM25 and hybrid retrieval (and reranked)."""
    from rag.components import build_ingest_pipeline, build_reranker, build_retriever, build_store
    from rag.evaluation.retrieval import (
        DOCUMENT_DEPTH, ConfigurationReport, DocumentRanker, RetrievalReport, configurations, evaluate_configuration,
        eval_table, ingest_corpus, load_beir, report_stem, summarise, work_dir_for, write_corpus_documents,
        write_outputs,
    )
    from rag.evaluation.report import store_result

    with _user_errors():
        settings = Settings()
        # `--retriever dense bm25 hybrid`: an option takes one value, the other names arrive as extra
        # arguments (the command has no positional ones); commas work too.
        names = [n.strip() for v in [*(retriever or []), *ctx.args] for n in v.split(",") if n.strip()]
        chosen = configurations(names or ["hybrid"], rerank)
        dataset = load_beir(beir, split)
        queries = dataset.queries[:limit] if limit else dataset.queries
        if not queries:
            raise ValueError(f"{beir} has no queries with relevant documents in qrels/{split}.tsv")
        folder = work_dir_for(dataset.corpus_path, work)
        file_to_corpus_id = write_corpus_documents(dataset.corpus_path, folder / "docs")
        store = build_store(settings, folder / "index")
        with _progress_bar("indexing corpus") as progress:
            task = progress.add_task("ingest", total=None)
            pipeline = build_ingest_pipeline(settings, store, on_progress=lambda update: progress.update(
                task, completed=update.files_done, total=update.files_total))
            index_info = ingest_corpus(pipeline, store, folder / "docs")

        reranker, rerank_note = build_reranker(settings) if rerank else (None, None)
        # Documents are ranked by their best chunk, so fetch twice as many chunks as documents scored.
        chunk_depth = 2 * DOCUMENT_DEPTH
        weights = {"dense": {"bm25_weight": 0.0}, "bm25": {"dense_weight": 0.0}, "hybrid": {}}
        reports, records, notes = [], [], [rerank_note] if rerank_note else []
        with store.reader() as index, _progress_bar("retrieval") as progress:
            for configuration in chosen:
                if configuration.rerank and reranker is None:
                    reports.append(ConfigurationReport(configuration.name, configuration.retriever, True,
                                                       skipped=rerank_note))
                    continue
                chunk_retriever = build_retriever(
                    settings, index, pipeline.embedder, top_k=chunk_depth,
                    dense_depth=max(settings.dense_depth, chunk_depth), bm25_depth=max(settings.bm25_depth, chunk_depth),
                    **weights[configuration.retriever],
                )
                ranker = DocumentRanker(chunk_retriever, file_to_corpus_id, chunk_depth=chunk_depth,
                                        reranker=reranker if configuration.rerank else None,
                                        rerank_depth=rerank_depth or settings.rerank_depth)
                task = progress.add_task(configuration.name, total=len(queries))
                done = evaluate_configuration(configuration.name, queries, ranker,
                                              on_progress=lambda n, _total, t=task: progress.update(t, completed=n))
                records.extend(done)
                reports.append(summarise(configuration, done))
        report = RetrievalReport(str(beir), split, index_info, reports, notes)
    version = f"{index_info.fingerprint}|reranker:{settings.reranker_model if rerank else 'none'}"
    stored = store_result(work, version, report_stem(report), report.to_json(), eval_table(report, records))
    if out is not None:
        write_outputs(report, records, out)
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        _gate(report.to_json(), baseline, max_drop)
        return
    table = Table(title=f"{beir.name} ({split}, {len(queries)} queries)")
    for column in ("configuration", "nDCG@10", "R@10", "R@100", "MRR@10", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    for item in reports:
        if item.skipped:
            table.add_row(item.name, "skipped", "-", "-", "-", "-", "-")
            continue
        table.add_row(item.name, f"{item.ndcg_at_10:.3f}", f"{item.recall_at_10:.3f}", f"{item.recall_at_100:.3f}",
                      f"{item.mrr_at_10:.3f}", f"{item.latency_ms_p50:.1f}", f"{item.latency_ms_p95:.1f}")
    Console().print(table)
    state = "reused" if index_info.reused else f"{index_info.files_ingested} files ingested, " \
        f"{index_info.chunks_embedded} chunks embedded in {index_info.seconds:.1f} s"
    err.print(f"[dim]index: {index_info.documents} documents, {index_info.chunks} chunks ({state})[/dim]")
    for note in notes:
        err.print(f"[dim]note: {note}[/dim]")
    err.print(f"[dim]stored: {stored}[/dim]")
    _gate(report.to_json(), baseline, max_drop)


if __name__ == "__main__":
    app()


finetune_app = typer.Typer(help="Fine-tune models on SQuAD-format or BEIR data (yours or public).", no_args_is_help=True)
app.add_typer(finetune_app, name="finetune")

OFFLINE_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
OutDirOption = Annotated[Path, typer.Option("--out", help="Folder for checkpoints and the trained model.")]
BaseOption = Annotated[str, typer.Option("--base", help="Model to start from: Hub name, local path or packaged model.")]
EvalLimitOption = Annotated[int, typer.Option("--eval-limit", min=0, help="Held-out questions evaluated each time (0 = all).")]
MaxExamplesOption = Annotated[int, typer.Option("--max-examples", min=0, help="Train on at most N questions, spread over paragraphs (0 = all).")]
EpochsOption = Annotated[float, typer.Option("--epochs", min=0.0)]
MaxStepsOption = Annotated[int, typer.Option("--max-steps", help="Stop after N optimizer steps (overrides --epochs).")]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", min=1)]
LearningRateOption = Annotated[float, typer.Option("--lr", min=0.0)]
MaxSeqLenOption = Annotated[int, typer.Option("--max-seq-len", min=32, help="Tokens per input (question + passage).")]
EvalStepsOption = Annotated[int, typer.Option("--eval-steps", min=1, help="Evaluate on held-out data every N steps.")]
SaveStepsOption = Annotated[int, typer.Option("--save-steps", min=1, help="Checkpoint every N steps.")]
ThreadsOption = Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for torch.")]
SeedOption = Annotated[int, typer.Option("--seed")]
SaveDtypeOption = Annotated[str, typer.Option("--save-dtype", help="float16 (half the size) or float32.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in --out.")]


def _train(run, out: Path):
    """Run a trainer with user errors made plain and stdout kept for --json
    (transformers' progress callback prints its logs to stdout)."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return run()
    except FileExistsError:
        raise ValueError(f"{out} holds checkpoints of an earlier run: add --resume to continue it, "
                         "or choose another --out") from None


def _check_dtype(save_dtype: str) -> None:
    if save_dtype not in ("float16", "float32"):
        err.print(f"[red]error:[/red] --save-dtype must be float16 or float32, not {save_dtype!r}")
        raise typer.Exit(2)


def _report_training(summary: dict, as_json: bool, metrics: tuple[str, ...]) -> None:
    if as_json:
        print(json.dumps(summary))
        return
    out_console = Console()
    out_console.print(f"saved to {summary['out']} after {summary['steps']} steps ({summary['seconds']:.0f} s)")
    if summary["evaluations"]:
        last = summary["evaluations"][-1]
        out_console.print("held-out " + "  ".join(f"{m} {last[m]:.3f}" for m in metrics if m in last))


@finetune_app.command("reader")
def finetune_reader(
    squad: Annotated[list[Path], typer.Option("--squad", exists=True, dir_okay=False, help="SQuAD-format training file (repeatable).")],
    out: OutDirOption,
    base: BaseOption = OFFLINE_ENCODER,
    eval_squad: Annotated[Path | None, typer.Option("--eval-squad", exists=True, dir_okay=False, help="Held-out SQuAD-format file (default: the last --holdout-articles of the first --squad file).")] = None,
    holdout_articles: Annotated[int, typer.Option("--holdout-articles", min=0, help="Articles held out of training for evaluation when no --eval-squad.")] = 10,
    eval_limit: EvalLimitOption = 300,
    max_examples: MaxExamplesOption = 0,
    epochs: EpochsOption = 1.0,
    max_steps: MaxStepsOption = -1,
    batch_size: BatchSizeOption = 16,
    learning_rate: LearningRateOption = 1e-4,
    max_seq_len: MaxSeqLenOption = 256,
    stride: Annotated[int, typer.Option("--stride", min=0, help="Tokens shared by consecutive windows of a long paragraph.")] = 64,
    eval_steps: EvalStepsOption = 250,
    save_steps: SaveStepsOption = 250,
    threads: ThreadsOption = None,
    seed: SeedOption = 42,
    save_dtype: SaveDtypeOption = "float16",
    resume: ResumeOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fine-tune an extractive QA reader (use it with RAG_READER_MODEL=DIR); EM / F1 on held-out questions every --eval-steps."""
    from generators.training.reader import ReaderTrainingConfig
    from rag.finetune import finetune_reader as run_finetune, reader_data

    _check_dtype(save_dtype)
    with _user_errors():
        data = reader_data(squad, eval_squad=eval_squad, holdout_articles=holdout_articles, eval_limit=eval_limit,
                           max_examples=max_examples or None, seed=seed)
        err.print(f"training on {len(data.train)} questions; {len(data.heldout)} held-out from {data.heldout_source or '-'}")
        config = ReaderTrainingConfig(
            max_seq_len=max_seq_len, stride=stride, batch_size=batch_size, learning_rate=learning_rate,
            epochs=epochs, max_steps=max_steps, eval_steps=eval_steps, save_steps=save_steps, seed=seed,
            threads=threads, save_dtype=save_dtype,  # type: ignore[arg-type]
        )
        result = _train(lambda: run_finetune(data, base, out, config, resume=resume), out)
    summary = {"out": str(result.out_dir), "base": result.base, "examples": result.examples,
               "train_windows": result.train_windows, "steps": result.steps, "examples_seen": result.examples_seen,
               "seconds": result.seconds, "evaluations": result.evaluations}
    _report_training(summary, as_json, ("em", "f1", "contains"))


RankingSquadOption = Annotated[Path | None, typer.Option("--squad", exists=True, dir_okay=False, help="SQuAD-format file: each question's paragraph is its relevant passage.")]
RankingBeirOption = Annotated[Path | None, typer.Option("--beir", exists=True, file_okay=False, help="BEIR folder: qrels of --split give the relevant documents.")]
SplitOption = Annotated[str, typer.Option("--split", help="BEIR qrels split to train on.")]
HoldoutOption = Annotated[int, typer.Option("--holdout", min=0, help="Last N articles (SQuAD) or queries (BEIR) held out for evaluation.")]
NegativesOption = Annotated[int, typer.Option("--negatives", min=1, max=50, help="Hard negatives per query, mined with BM25 + the embedder.")]


def _ranking_data(settings: Settings, **options):
    from rag.finetune import ranking_data

    with _progress_bar("mining negatives") as progress:
        task = progress.add_task("queries", total=None)
        data = ranking_data(settings, on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                            **options)
    err.print(f"training on {len(data.train)} queries; {len(data.heldout)} held-out from {data.heldout_source}")
    return data


@finetune_app.command("reranker")
def finetune_reranker(
    out: OutDirOption,
    squad: RankingSquadOption = None,
    beir: RankingBeirOption = None,
    split: SplitOption = "train",
    base: BaseOption = OFFLINE_ENCODER,
    holdout: HoldoutOption = 10,
    eval_limit: EvalLimitOption = 300,
    max_examples: MaxExamplesOption = 0,
    negatives: NegativesOption = 3,
    epochs: EpochsOption = 1.0,
    max_steps: MaxStepsOption = -1,
    batch_size: BatchSizeOption = 32,
    learning_rate: LearningRateOption = 5e-5,
    max_seq_len: MaxSeqLenOption = 256,
    eval_steps: EvalStepsOption = 250,
    save_steps: SaveStepsOption = 250,
    threads: ThreadsOption = None,
    seed: SeedOption = 42,
    save_dtype: SaveDtypeOption = "float16",
    work: WorkOption = Path(".rag-finetune"),
    resume: ResumeOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fine-tune a cross-encoder reranker (use it with RAG_RERANKER_MODEL=DIR); accuracy@1 and MRR on held-out queries."""
    from generators.training.reranker import RerankerTrainer, RerankerTrainingConfig

    _check_dtype(save_dtype)
    with _user_errors():
        data = _ranking_data(Settings(), work=work, squad=squad, beir=beir, split=split, holdout=holdout,
                             eval_limit=eval_limit, max_examples=max_examples or None, negatives=negatives, seed=seed)
        config = RerankerTrainingConfig(
            max_seq_len=max_seq_len, batch_size=batch_size, learning_rate=learning_rate, epochs=epochs,
            max_steps=max_steps, eval_steps=eval_steps, save_steps=save_steps, seed=seed, threads=threads,
            save_dtype=save_dtype,  # type: ignore[arg-type]
        )
        trainer = RerankerTrainer(base, out, config, heldout=data.heldout)
        result = _train(lambda: trainer.run(data.train, resume=resume), out)
    summary = {"out": str(result.out_dir), "base": result.base, "examples": result.examples, "pairs": result.pairs,
               "steps": result.steps, "pairs_seen": result.pairs_seen, "seconds": result.seconds,
               "evaluations": result.evaluations}
    _report_training(summary, as_json, ("accuracy@1", "mrr"))


@finetune_app.command("embedder")
def finetune_embedder(
    out: OutDirOption,
    squad: RankingSquadOption = None,
    beir: RankingBeirOption = None,
    split: SplitOption = "train",
    base: BaseOption = OFFLINE_ENCODER,
    holdout: HoldoutOption = 10,
    eval_limit: EvalLimitOption = 300,
    max_examples: MaxExamplesOption = 0,
    negatives: NegativesOption = 1,
    epochs: EpochsOption = 1.0,
    max_steps: MaxStepsOption = -1,
    batch_size: BatchSizeOption = 32,
    learning_rate: LearningRateOption = 2e-5,
    max_seq_len: MaxSeqLenOption = 256,
    eval_steps: EvalStepsOption = 250,
    save_steps: SaveStepsOption = 250,
    threads: ThreadsOption = None,
    seed: SeedOption = 42,
    work: WorkOption = Path(".rag-finetune"),
    resume: ResumeOption = False,
    as_json: JsonOption = False,
) -> None:
    """Adapt the embedder to a corpus with in-batch negatives (use it with RAG_EMBEDDER_MODEL=DIR; the next ingest re-embeds)."""
    from generators.training.embedder import EmbedderTrainer, EmbedderTrainingConfig

    with _user_errors():
        data = _ranking_data(Settings(), work=work, squad=squad, beir=beir, split=split, holdout=holdout,
                             eval_limit=eval_limit, max_examples=max_examples or None, negatives=negatives, seed=seed)
        config = EmbedderTrainingConfig(
            max_seq_len=max_seq_len, batch_size=batch_size, learning_rate=learning_rate, epochs=epochs,
            max_steps=max_steps, eval_steps=eval_steps, save_steps=save_steps, seed=seed, threads=threads,
        )
        trainer = EmbedderTrainer(base, out, config, heldout=data.heldout)
        result = _train(lambda: trainer.run(data.train, resume=resume), out)
    summary = {"out": str(result.out_dir), "base": result.base, "examples": result.examples, "steps": result.steps,
               "examples_seen": result.examples_seen, "seconds": result.seconds, "evaluations": result.evaluations}
    _report_training(summary, as_json, ("accuracy@1", "mrr"))


# -- generators beyond answers: images, captions, video, plain completions --
SeedOption = Annotated[int | None, typer.Option("--seed", min=0, max=2**31 - 1, help="Same seed, same output.")]
StepsOption = Annotated[int | None, typer.Option("--steps", min=1, max=100, help="Denoising steps (default: settings).")]
GuidanceOption = Annotated[float | None, typer.Option("--guidance", min=0, max=30, help="Guidance scale.")]
NegativeOption = Annotated[str | None, typer.Option("--negative", help="What the output should not show.")]


def _size(size: str) -> tuple[int, int]:
    try:
        width, height = (int(side) for side in size.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{size!r}: give WIDTHxHEIGHT, e.g. 512x512") from None
    return width, height


def _step_bar(label: str):
    """A progress bar driven by a generator's on_step(step, total) callback."""
    bar = _progress_bar(label)
    task = bar.add_task(label, total=None)

    def on_step(step: int, total: int) -> None:
        bar.update(task, completed=step, total=total)

    return bar, on_step


@app.command()
def image(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file (with --n > 1: out-1.png, out-2.png...).")],
    negative: NegativeOption = None,
    n: Annotated[int, typer.Option("--n", min=1, max=4, help="How many images.")] = 1,
    size: Annotated[str, typer.Option("--size", help="WIDTHxHEIGHT, multiples of 8.")] = "512x512",
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    seed: SeedOption = None,
) -> None:
    """Draw PROMPT with the text→image model (RAG_IMAGE_MODEL, default stabilityai/sd-turbo)."""
    from rag.components import build_media_models

    with _user_errors():
        settings = Settings()
        width, height = _size(size)
        bar, on_step = _step_bar("drawing")
        with bar, build_media_models(settings).use("image") as drawer:
            result = drawer.run(prompt, negative_prompt=negative, n=n, width=width, height=height, steps=steps,
                                guidance=guidance, seed=seed, on_step=on_step)
    paths = [output] if n == 1 else [output.with_name(f"{output.stem}-{i}{output.suffix}") for i in range(1, n + 1)]
    output.parent.mkdir(parents=True, exist_ok=True)
    for picture, path in zip(result.images, paths, strict=True):
        picture.save(path, format="PNG")
        out.print(str(path))
    err.print(f"[dim]seed {result.seed}, {result.steps} steps, guidance {result.guidance:g}[/dim]")


@app.command()
def caption(
    picture: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The image file.")],
    heatmap: Annotated[Path | None, typer.Option("--heatmap", help="Also write where the model looked, per word (PNG).")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Text the caption continues.")] = None,
) -> None:
    """Describe the image in words (RAG_CAPTION_MODEL, default microsoft/git-base)."""
    from generators.captioner import render_heatmap
    from rag.components import build_media_models

    with _user_errors():
        with build_media_models(Settings()).use("caption") as captioner:
            result = captioner.run(picture, prompt=prompt)
            if heatmap is not None:
                render_heatmap(picture, captioner.heatmap(picture, result), heatmap)
    out.print(result.text)
    if heatmap is not None:
        err.print(f"[dim]heat map: {heatmap}[/dim]")


@app.command()
def video(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="MP4 file.")],
    negative: NegativeOption = None,
    frames: Annotated[int | None, typer.Option("--frames", min=1, max=64, help="Frames (default: settings).")] = None,
    size: Annotated[str | None, typer.Option("--size", help="WIDTHxHEIGHT, multiples of 8 (default: the model's).")] = None,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    seed: SeedOption = None,
) -> None:
    """Render PROMPT as a short H.264 MP4 (RAG_VIDEO_MODEL, default damo-vilab/text-to-video-ms-1.7b)."""
    from generators.video import write_mp4
    from rag.components import build_media_models

    with _user_errors():
        width, height = _size(size) if size else (None, None)
        bar, on_step = _step_bar("rendering")
        with bar, build_media_models(Settings()).use("video") as maker:
            result = maker.run(prompt, negative_prompt=negative, frames=frames, steps=steps, guidance=guidance,
                               width=width, height=height, seed=seed, on_step=on_step)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(result, output)
    out.print(str(output))
    err.print(f"[dim]{len(result.frames)} frames at {result.fps} fps, seed {result.seed}[/dim]")


@app.command()
def complete(
    prompt: Annotated[str, typer.Argument(help="The text to continue.")],
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, max=2048)] = 64,
    temperature: Annotated[float, typer.Option("--temperature", min=0, max=2, help="0: greedy.")] = 1.0,
    top_p: Annotated[float, typer.Option("--top-p", min=0.01, max=1)] = 1.0,
    seed: SeedOption = None,
) -> None:
    """Continue PROMPT with the generator (as the classic GPT-2 example does), streaming the text."""
    from generators.text_generators import Sampling
    from rag.components import build_generator

    with _user_errors():
        generator = build_generator(Settings())
        sampling = Sampling(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
        out.print(prompt, end="")
        for piece in generator.stream_complete(prompt, sampling):
            out.print(piece, end="", soft_wrap=True)
        out.print()
