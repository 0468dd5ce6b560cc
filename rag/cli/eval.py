"""`rag eval qa|docqa|retrieval`: measure answers and retrieval, with a regression gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rag.cli.shared import BaselineOption, JsonOption, MaxDropOption, WorkOption, app, err, progress_bar, user_errors
from rag.settings import Settings


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

    from common.language import query_language
    from generators.text.sentence_reader import SentenceReader
    from index.bm25 import analyze
    from rag.components import build_chain, build_embedder, build_extractive_reader, build_ingest_pipeline, build_store
    from rag.evaluation.qa import (
        eval_table, evaluate_gold, evaluate_open, load_squad, summarise, work_dir_for,
    )
    from rag.evaluation.report import store_result, write_records, write_report

    if setting not in ("gold", "open"):
        err.print(f"[red]error:[/red] --setting must be gold or open, not {setting!r}")
        raise typer.Exit(2)
    with user_errors():
        settings = Settings()
        folder = work_dir_for(squad, work)
        items = load_squad(squad, folder / "docs" if setting == "open" else None)
        if limit:
            items = items[:limit]
        if not items:
            raise ValueError(f"{squad} holds no answerable questions")
        with progress_bar(f"{setting} setting") as progress:
            task = progress.add_task("questions", total=len(items))

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done)

            if setting == "gold":
                embedder = build_embedder(settings)
                sentences = SentenceReader(embedder, analyze)
                reader, note = build_extractive_reader(settings, sentences)
                # As the chain does: questions in a language the reader was not trained for get the best sentence.
                language = Counter(query_language(item.question) for item in items).most_common(1)[0][0]
                if settings.reader.languages is not None and language not in settings.reader.languages:
                    reader, note = sentences, (f"the extractive reader serves {', '.join(settings.reader.languages)}, "
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
    version = f"{fingerprint or 'gold'}|reader:{settings.reader.model}|reranker:{settings.rerank.model}"
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
    from rag.components import build_ingest_pipeline, build_reranker, build_retriever, build_store
    from rag.evaluation.retrieval import (
        DOCUMENT_DEPTH, ConfigurationReport, DocumentRanker, RetrievalReport, configurations, evaluate_configuration,
        eval_table, ingest_corpus, load_beir, report_stem, summarise, work_dir_for, write_corpus_documents,
        write_outputs,
    )
    from rag.evaluation.report import store_result

    with user_errors():
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
        with progress_bar("indexing corpus") as progress:
            task = progress.add_task("ingest", total=None)
            pipeline = build_ingest_pipeline(settings, store, on_progress=lambda update: progress.update(
                task, completed=update.files_done, total=update.files_total))
            index_info = ingest_corpus(pipeline, store, folder / "docs")

        reranker, rerank_note = build_reranker(settings) if rerank else (None, None)
        # Documents are ranked by their best chunk, so fetch twice as many chunks as documents scored.
        chunk_depth = 2 * DOCUMENT_DEPTH
        weights = {"dense": {"bm25_weight": 0.0}, "bm25": {"dense_weight": 0.0}, "hybrid": {}}
        reports, records, notes = [], [], [rerank_note] if rerank_note else []
        with store.reader() as index, progress_bar("retrieval") as progress:
            for configuration in chosen:
                if configuration.rerank and reranker is None:
                    reports.append(ConfigurationReport(configuration.name, configuration.retriever, True,
                                                       skipped=rerank_note))
                    continue
                chunk_retriever = build_retriever(
                    settings, index, pipeline.embedder, top_k=chunk_depth,
                    dense_depth=max(settings.retrieval.dense_depth, chunk_depth), bm25_depth=max(settings.retrieval.bm25_depth, chunk_depth),
                    **weights[configuration.retriever],
                )
                ranker = DocumentRanker(chunk_retriever, file_to_corpus_id, chunk_depth=chunk_depth,
                                        reranker=reranker if configuration.rerank else None,
                                        rerank_depth=rerank_depth or settings.rerank.depth)
                task = progress.add_task(configuration.name, total=len(queries))
                done = evaluate_configuration(configuration.name, queries, ranker,
                                              on_progress=lambda n, _total, t=task: progress.update(t, completed=n))
                records.extend(done)
                reports.append(summarise(configuration, done))
        report = RetrievalReport(str(beir), split, index_info, reports, notes)
    version = f"{index_info.fingerprint}|reranker:{settings.rerank.model if rerank else 'none'}"
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
