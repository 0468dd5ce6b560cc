"""`rag config` (the effective settings and where each came from) and `rag models` (the model table)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from rag.cli.shared import JsonOption, app, out, user_errors
from rag.settings import Settings, describe, reference_markdown

config_app = typer.Typer(help="The settings: effective values and their reference.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    changed: bool = typer.Option(False, "--changed", help="Only settings that are not at their default."),
    as_json: JsonOption = False,
) -> None:
    """Every setting's effective value and where it came from (environment, .env file or default)."""
    with user_errors():
        rows = [row for row in describe(Settings()) if not changed or row.source != "default"]
    if as_json:
        print(json.dumps([{"variable": r.variable, "value": r.value, "source": r.source, "default": r.default}
                          for r in rows], default=str))
        return
    table = Table("variable", "value", "from")
    for row in rows:
        table.add_row(row.variable, json.dumps(row.value, default=str, ensure_ascii=False), row.source)
    out.print(table)


REFERENCE_START, REFERENCE_END = "<!-- settings-reference:start -->", "<!-- settings-reference:end -->"


def with_reference(page: str) -> str:
    """`page` with the generated settings reference between its two markers."""
    head, start, rest = page.partition(REFERENCE_START)
    _, end, tail = rest.partition(REFERENCE_END)
    if not start or not end:
        raise ValueError(f"the page has no {REFERENCE_START} ... {REFERENCE_END} markers")
    return f"{head}{start}\n{reference_markdown()}{end}{tail}"


@config_app.command("docs")
def config_docs(
    update: Path | None = typer.Option(None, "--update", help="Rewrite the reference between the markers of this "
                                       "Markdown page (docs/configuration.md) instead of printing it."),
) -> None:
    """The reference tables of every setting in Markdown, generated from the code."""
    if update is None:
        print(reference_markdown(), end="")
        return
    with user_errors():
        update.write_text(with_reference(update.read_text(encoding="utf-8")), encoding="utf-8")


@app.command()
def models(as_json: JsonOption = False) -> None:
    """The model of each role: the one configured, the default, what stands in offline, and its licence."""
    from generators.model_names import DEFAULT_MODELS

    with user_errors():
        settings = Settings()
    configured = {"embedder": settings.embedder.model, "reranker": settings.rerank.model,
                  "reader": settings.reader.model, "generator": settings.generator.model,
                  "image": settings.media.image_model, "caption": settings.media.caption_model,
                  "video": settings.media.video_model}
    rows = [{"role": m.role, "model": configured[m.role], "default": m.name, "licence": m.licence,
             "offline": m.offline if configured[m.role] == m.name else "-"} for m in DEFAULT_MODELS]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("role", "model", "licence (of the default)", "offline stand-in")
    for row in rows:
        table.add_row(row["role"], row["model"], row["licence"], row["offline"])
    out.print(table)
