"""`rag eval qa|docqa|retrieval`: measure answers and retrieval, with a regression gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rag.cli.shared import BaselineOption, JsonOption, MaxDropOption, WorkOption, app, err, progress_bar, user_errors


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
    from rag.evaluation.qa import eval_table, run_qa
    from rag.evaluation.report import store_result, write_records, write_report

    with user_errors(), progress_bar(f"{setting} setting") as progress:
        task = progress.add_task("questions", total=None)
        run = run_qa(squad, setting=setting, work=work, mode=mode, top_k=top_k, limit=limit,
                     on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    report, records = run.report, run.records
    stem = f"qa-{squad.stem}-{setting}-{report.mode}"
    table = eval_table(report, records)
    stored = store_result(work, run.version, stem, report.to_json(), table)
    if out is not None:
        write_report(table, report.to_json(), out, stem)
        write_records(records, out / f"{stem}.jsonl")
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        _gate(report.to_json(), baseline, max_drop)
        return
    table = Table(title=f"{squad.name} ({setting} setting, {report.mode})")
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
    mode: Annotated[str | None, typer.Option("--mode", help="Reader: extractive or generative (default: RAG_READER__DEFAULT_MODE).")] = None,
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

    with user_errors():
        with progress_bar("docqa") as progress:
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

    with user_errors():
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
        "--rerank-depth", min=1, help="Chunks the reranker rescores (default: RAG_RERANK__DEPTH).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Only the first N queries (0 = all).")] = 0,
    work: WorkOption = Path(".rag-eval"),
    out: Annotated[Path | None, typer.Option("--out", help="Write the summary JSON and per-query JSONL here.")] = None,
    baseline: BaselineOption = None,
    max_drop: MaxDropOption = 0.01,
    as_json: JsonOption = False,
) -> None:
    """nDCG@10, Recall@10/@100, MRR@10 and latency per query of dense, BM25 and hybrid retrieval (and reranked)."""
    from rag.evaluation.report import store_result
    from rag.evaluation.retrieval import eval_table, report_stem, run_retrieval, write_outputs

    # `--retriever dense bm25 hybrid`: an option takes one value, the other names arrive as extra arguments (the
    # command has no positional ones); commas work too.
    names = [n.strip() for v in [*(retriever or []), *ctx.args] for n in v.split(",") if n.strip()]
    with user_errors(), progress_bar("retrieval") as progress:
        tasks: dict[str, object] = {}

        def advance(name: str, done: int, total: int) -> None:
            tasks.setdefault(name, progress.add_task(name, total=total))
            progress.update(tasks[name], completed=done, total=total)

        run = run_retrieval(beir, split=split, retrievers=names or ["hybrid"], rerank=rerank, rerank_depth=rerank_depth,
                            limit=limit, work=work, on_ingest=lambda done, total: advance("indexing corpus", done, total),
                            on_query=advance)
    report, records, reports, notes, index_info = run.report, run.records, run.report.configurations, \
        run.report.notes, run.report.index
    stored = store_result(work, run.version, report_stem(report), report.to_json(), eval_table(report, records))
    if out is not None:
        write_outputs(report, records, out)
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        _gate(report.to_json(), baseline, max_drop)
        return
    table = Table(title=f"{beir.name} ({split}, {run.queries} queries)")
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
