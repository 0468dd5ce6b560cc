"""What every command shares: the Typer app, consoles, common options, and how failures are shown."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from pydantic import ValidationError

from generators.resolve import ModelUnavailableError
from generators.text.text_generators import GeneratorError
from index.store import BackendMismatchError, IndexLockedError, MissingIndexError
from rag.settings import Settings, setting_variable, unknown_variables


app = typer.Typer(help="Question answering over your own documents, with cited answers.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()

IndexOption = Annotated[
    Path | None, typer.Option("--index", help="Index directory (default: $RAG_INDEX__DIR or ./.rag).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BackendOption = Annotated[
    Literal["faiss", "milvus"] | None,
    typer.Option("--backend", help="Where the vectors live: faiss or milvus (default: $RAG_INDEX__BACKEND, faiss)."),
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
    for name in unknown_variables():  # e.g. a name from before settings had sections: say so, do not guess
        err.print(f"[yellow]warning:[/yellow] {name} sets nothing: settings are RAG_SECTION__FIELD "
                  "(rag config show lists them)")


@contextmanager
def user_errors():
    """Known failures become one clear line and a non-zero exit, not a traceback."""
    try:
        yield
    except ValidationError as exc:
        problems = "; ".join(f"{setting_variable(e['loc'])}: {e['msg']}" for e in exc.errors())
        err.print(f"[red]error:[/red] invalid setting: {problems}")
        raise typer.Exit(2) from None
    except BackendMismatchError as exc:
        from rag.components import backend_mismatch_advice

        err.print(f"[red]error:[/red] {backend_mismatch_advice(exc)}")
        raise typer.Exit(2) from None
    except (MissingIndexError, IndexLockedError, ModelUnavailableError, GeneratorError,
            ValueError, ConnectionError, ImportError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


class RateColumn(ProgressColumn):
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


def progress_bar(label: str) -> Progress:
    """A progress bar with ETA on stderr, shown only on a terminal."""
    from rich.progress import TimeRemainingColumn

    return Progress(
        TextColumn(label), BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, disable=not err.is_terminal, transient=False,
    )



SeedOption = Annotated[int | None, typer.Option("--seed", min=0, max=2**31 - 1, help="Same seed, same output.")]


def settings_with(options: Mapping[str, object]) -> Settings:
    """Settings from the environment, with the options given on the command line ("section.field": value, None
    when not given) on top."""
    return Settings().updated(options)
