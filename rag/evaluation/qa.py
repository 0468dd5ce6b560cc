"""`rag eval qa`: EM / F1 / containment on a SQuAD-format file, in the gold or the open setting.

*gold*: the reader sees the question's own paragraph (reader quality alone).
*open*: every paragraph is ingested as a document and the full chain answers
(retrieval, gate, reader); the gold paragraph's rank among the passages gives
recall@1 and @5. The ingested corpus lives in a work folder keyed by the
file's hash, so a second run re-embeds nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from generators.text.reading import ReaderPassage
from rag.evaluation.metrics import contains_answer, exact_match, f1_score, percentile
from rag.evaluation.report import EvalTable

Setting = Literal["gold", "open"]
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: list[str]
    context: str
    path: str  # the document file of its paragraph (open setting)


@dataclass
class QARecord:
    id: str
    question: str
    answers: list[str]
    prediction: str
    answer_type: str
    abstained: bool
    em: float
    f1: float
    contains: float
    gold_rank: int | None  # 1-based rank of the gold paragraph among the passages (open setting)
    timings_ms: dict[str, float]


@dataclass
class QAReport:
    file: str
    setting: str
    mode: str
    questions: int
    em: float
    f1: float
    contains: float
    abstain_rate: float
    recall_at_1: float | None
    recall_at_5: float | None
    latency_ms: dict[str, dict[str, float]]  # stage → {"p50", "p95"}
    notes: list[str] = field(default_factory=list)
    fingerprint: str | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["recall@1"] = data.pop("recall_at_1")
        data["recall@5"] = data.pop("recall_at_5")
        data["latency_ms_p50"] = self.latency_ms.get("total", {}).get("p50", 0.0)
        data["latency_ms_p95"] = self.latency_ms.get("total", {}).get("p95", 0.0)
        return data


def read_squad(path: Path) -> list[dict]:
    """The articles of a SQuAD-format file."""
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def squad_items(
    articles: list[dict], docs_dir: Path | None = None, *, only: Collection[int] | None = None
) -> list[QAItem]:
    """Questions of the articles (all, or those numbered in `only`); with `docs_dir`, each of their
    paragraphs is also written there as a file (`AAAA-PPP.txt`), the document the open setting ingests."""
    items = []
    for a, article in enumerate(articles):
        if only is not None and a not in only:
            continue
        for p, paragraph in enumerate(article["paragraphs"]):
            doc = docs_dir / f"{a:04d}-{p:03d}.txt" if docs_dir else Path(f"{a:04d}-{p:03d}.txt")
            if docs_dir is not None and not doc.exists():
                doc.parent.mkdir(parents=True, exist_ok=True)
                doc.write_text(paragraph["context"], encoding="utf-8")
            for qa in paragraph["qas"]:
                answers = [x["text"] for x in qa.get("answers", []) if x.get("text")]
                if answers:
                    items.append(QAItem(str(qa["id"]), qa["question"], answers, paragraph["context"], str(doc.resolve())))
    return items


def load_squad(path: Path, docs_dir: Path | None = None) -> list[QAItem]:
    """Questions of a SQuAD-format file; with `docs_dir`, also write each paragraph there as a file."""
    return squad_items(read_squad(path), docs_dir)


def work_dir_for(path: Path, root: Path) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return root / f"{path.stem}-{digest}"


def summarise(records: list[QARecord], *, file: str, setting: str, mode: str, notes: list[str],
              fingerprint: str | None) -> QAReport:
    n = max(len(records), 1)
    stages = sorted({stage for r in records for stage in r.timings_ms})
    latency = {
        stage: {"p50": round(percentile([r.timings_ms.get(stage, 0.0) for r in records], 50), 2),
                "p95": round(percentile([r.timings_ms.get(stage, 0.0) for r in records], 95), 2)}
        for stage in stages
    }
    ranks = [r.gold_rank for r in records]
    open_setting = setting == "open"
    return QAReport(
        file=file, setting=setting, mode=mode, questions=len(records),
        em=round(sum(r.em for r in records) / n, 4),
        f1=round(sum(r.f1 for r in records) / n, 4),
        contains=round(sum(r.contains for r in records) / n, 4),
        abstain_rate=round(sum(r.abstained for r in records) / n, 4),
        recall_at_1=round(sum(1 for k in ranks if k == 1) / n, 4) if open_setting else None,
        recall_at_5=round(sum(1 for k in ranks if k is not None and k <= 5) / n, 4) if open_setting else None,
        latency_ms=latency, notes=notes, fingerprint=fingerprint,
    )


def _record(item: QAItem, prediction: str, answer_type: str, abstained: bool, gold_rank: int | None,
            timings: dict[str, float]) -> QARecord:
    scored = "" if abstained else prediction
    return QARecord(item.id, item.question, item.answers, prediction, answer_type, abstained,
                    exact_match(scored, item.answers), f1_score(scored, item.answers),
                    contains_answer(scored, item.answers), gold_rank, timings)


def evaluate_gold(items: list[QAItem], reader, *, on_progress: ProgressCallback | None = None) -> list[QARecord]:
    """The reader alone, on each question's own paragraph."""
    records = []
    for done, item in enumerate(items, start=1):
        started = time.perf_counter()
        result = reader.run(item.question, [ReaderPassage(0, item.context, 0)])
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        records.append(_record(item, result.answer, result.answer_type, not result.answer, None,
                               {"read": elapsed, "total": elapsed}))
        if on_progress:
            on_progress(done, len(items))
    return records


def evaluate_open(items: list[QAItem], chain, *, mode: str | None = None, top_k: int | None = None,
                  on_progress: ProgressCallback | None = None) -> list[QARecord]:
    """The whole chain over the ingested paragraphs."""
    records = []
    for done, item in enumerate(items, start=1):
        trace = chain.trace(item.question, mode=mode, top_k=top_k)
        sources = [p.source for p in trace.passages]
        rank = sources.index(item.path) + 1 if item.path in sources else None
        response = trace.response
        records.append(_record(item, response.answer, response.answer_type, response.abstained, rank,
                               response.timings_ms))
        if on_progress:
            on_progress(done, len(items))
    return records


QA_METRICS = ["em", "f1", "contains", "recall@1", "recall@5", "abstain_rate"]


def eval_table(report: QAReport, records: list[QARecord]) -> EvalTable:
    """One row (the reader mode) and the latency samples of each chain stage (Markdown and charts)."""
    values = report.to_json()
    metrics = [m for m in QA_METRICS if values.get(m) is not None]
    table = EvalTable(f"{Path(report.file).name} ({report.setting} setting)", metrics, notes=list(report.notes))
    table.rows[report.mode] = {m: values[m] for m in metrics}
    for stage in report.latency_ms:
        table.latency_ms[stage] = [r.timings_ms.get(stage, 0.0) for r in records]
    return table


@dataclass
class QARun:
    """What `run_qa` measured: the report, the per-question records, and the pipeline version they belong to."""

    report: QAReport
    records: list[QARecord]
    version: str  # the index fingerprint and the models that read and rerank: results are kept per version


def run_qa(squad: Path, *, setting: Literal["gold", "open"] = "open", work: Path, settings=None,  # noqa: ANN001
           mode: str | None = None, top_k: int | None = None, limit: int = 0,
           on_progress: ProgressCallback | None = None) -> QARun:
    """Answer the questions of a SQuAD file: `gold` hands the reader each question's own paragraph, `open` ingests
    every paragraph into an index under `work` and asks the whole chain."""
    from collections import Counter

    from common.language import query_language
    from generators.text.sentence_reader import SentenceReader
    from index.bm25 import analyze
    from rag.components import build_chain, build_embedder, build_extractive_reader, build_ingest_pipeline, build_store
    from rag.settings import Settings

    if setting not in ("gold", "open"):
        raise ValueError(f"the setting must be gold or open, not {setting!r}")
    settings = settings or Settings()
    folder = work_dir_for(squad, work)
    items = load_squad(squad, folder / "docs" if setting == "open" else None)
    items = items[:limit] if limit else items
    if not items:
        raise ValueError(f"{squad} holds no answerable questions")
    if setting == "gold":
        embedder = build_embedder(settings)
        sentences = SentenceReader(embedder, analyze)
        reader, note = build_extractive_reader(settings, sentences)
        # As the chain does: questions in a language the reader was not trained for get the best sentence.
        language = Counter(query_language(item.question) for item in items).most_common(1)[0][0]
        if settings.reader.languages is not None and language not in settings.reader.languages:
            reader, note = sentences, (f"the extractive reader serves {', '.join(settings.reader.languages)}, "
                                       f"not {language}: answers are the best supporting sentence")
        records = evaluate_gold(items, reader, on_progress=on_progress)
        notes, fingerprint, used_mode = [note] if note else [], None, "extractive"
    else:
        store = build_store(settings, folder / "index")
        pipeline = build_ingest_pipeline(settings, store)
        pipeline.run([folder / "docs"])
        with store.reader() as index:
            chain = build_chain(settings, index, pipeline.embedder)
            used_mode = mode or chain.default_mode
            records = evaluate_open(items, chain, mode=used_mode, top_k=top_k, on_progress=on_progress)
            notes, fingerprint = chain.notes, index.fingerprint
    report = summarise(records, file=str(squad), setting=setting, mode=used_mode, notes=notes, fingerprint=fingerprint)
    version = f"{fingerprint or 'gold'}|reader:{settings.reader.model}|reranker:{settings.rerank.model}"
    return QARun(report, records, version)
