"""`rag ingest`, `rag stats` and `rag index migrate`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


from index.store import MissingIndexError
from rag.cli.shared import (
    BackendOption, IndexOption, JsonOption, RateColumn, app, err, out, settings_with, user_errors,
)
from rag.settings import Settings


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
        typer.Option("--engine", help="local, or ray: read and embed on a Ray cluster (default: RAG_INGEST__ENGINE)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help='With --engine ray: "auto", "ray://host:10001"...; default: '
                     "$RAG_INGEST__RAY_ADDRESS, else a local Ray instance for this run."),
    ] = None,
    embed_actors: Annotated[
        int | None, typer.Option("--embed-actors", min=1, help="With --engine ray: model actors (RAG_INGEST__RAY_EMBED_ACTORS).")
    ] = None,
    backend: BackendOption = None,
    watch: Annotated[bool, typer.Option("--watch", help="Then keep watching PATHS: every change is ingested "
                                        "(added, changed, moved, deleted files), until Ctrl-C.")] = False,
    group: Annotated[list[str] | None, typer.Option(
        "--group", help="Only keys of this group (repeatable) may read the documents of this run (and admins).")] = None,
    group_for: Annotated[list[str] | None, typer.Option(
        "--group-for", help="GLOB=GROUP[,GROUP]: documents whose path matches GLOB are for these groups "
        "(repeatable; the first match wins over --group).")] = None,
    public: Annotated[bool, typer.Option("--public", help="Make the documents of this run readable by every key.")
                      ] = False,
    as_json: JsonOption = False,
) -> None:
    """Read, chunk and embed files into the index; unchanged files are skipped."""
    from rag.components import build_ingest_pipeline, build_store

    with user_errors():
        settings = Settings()
        settings = settings.updated({
            "ingest.include": include or None,
            "ingest.exclude": [*settings.ingest.exclude, *exclude] if exclude else None,
            "index.lock_timeout": lock_timeout, "ingest.engine": engine, "ingest.ray_address": ray_address,
            "ingest.ray_embed_actors": embed_actors, "index.backend": backend,
        })
        groups_for = _group_rules(group or [], group_for or [], public)

    started = time.perf_counter()
    rate = RateColumn(started)
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

    with user_errors(), progress:
        store = build_store(settings, index)
        pipeline = build_ingest_pipeline(settings, store, on_progress=on_progress)
        report = pipeline.run(paths, prune=prune, groups_for=groups_for)
    _print_ingest_report(report, as_json)
    if watch:
        from ingest.watch import watch_folders

        err.print(f"watching {', '.join(map(str, paths))} (Ctrl-C stops)")
        with user_errors():
            watch_folders(paths, lambda: pipeline.run(paths, prune=True, groups_for=groups_for), ignore=[store.root],
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


def _group_rules(groups: list[str], rules: list[str], public: bool):  # noqa: ANN202 - GroupRules | None
    """Who may read this run's documents, from --group, --group-for and --public (None: leave them as they are)."""
    from ingest.pipeline import GroupRules

    if public and groups:
        raise ValueError("--public and --group contradict each other")
    parsed = []
    for rule in rules:
        glob, _, names = rule.partition("=")
        chosen = tuple(n.strip() for n in names.split(",") if n.strip())
        if not glob or not chosen:
            raise ValueError(f"--group-for takes GLOB=GROUP[,GROUP], not {rule!r}")
        parsed.append((glob, chosen))
    default = () if public else (tuple(groups) or None)
    return GroupRules(tuple(parsed), default) if parsed or default is not None else None


@app.command()
def stats(index: IndexOption = None, backend: BackendOption = None, as_json: JsonOption = False) -> None:
    """Documents, chunks, fingerprint and backend of an index."""
    from rag.components import build_store

    with user_errors():
        result = build_store(settings_with({"index.backend": backend}), index).stats().to_dict()
    if as_json:
        print(json.dumps(result))
        return
    table = Table(show_header=False)
    for key, value in result.items():
        table.add_row(key, str(value))
    out.print(table)



index_app = typer.Typer(help="Manage an index: move its vectors between backends.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("migrate")
def index_migrate(
    to: Annotated[Literal["faiss", "milvus"], typer.Option("--to", help="The backend to move the vectors to.")],
    index: IndexOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy every vector into another backend (from the docstore: nothing is re-embedded) and switch to it.

    Afterwards set RAG_INDEX__BACKEND (or pass --backend) to the new backend for ingest, ask and serve.
    """
    from rag.components import build_store

    with user_errors():
        settings = settings_with({"index.backend": to, "index.dir": index})
        store = build_store(settings)
        if not store.exists():
            raise MissingIndexError(store.root)
        started = time.perf_counter()
        with store.writer(lock_timeout=settings.index.lock_timeout) as writer:
            previous = writer.store.get_meta("backend") or "faiss"
            copied = writer.migrate()
    result = {"index": str(store.root), "from": previous, "to": to, "vectors": copied,
              "seconds": round(time.perf_counter() - started, 3)}
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"{copied} vectors copied from {previous} to {to} in {result['seconds']:.1f} s; "
                  f"now use RAG_INDEX__BACKEND={to} (or --backend {to})")
