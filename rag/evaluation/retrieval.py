"""`rag eval retrieval`: nDCG@10, Recall@10/@100, MRR@10 and latency on a BEIR-format folder.

A BEIR folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl`
(`_id`, `text`) and `qrels/<split>.tsv` (`query-id corpus-id score`). Each
corpus entry is written as one text file (title on the first line) into a work
folder keyed by the corpus file's hash and ingested like any user document, so
a second run reuses the index (the pipeline skips unchanged files and
re-embeds only when its fingerprint changes). The retriever returns chunks;
documents are ranked by their best chunk.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.evaluation.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from rag.evaluation.report import EvalTable, write_report

ProgressCallback = Callable[[int, int], None]
RETRIEVERS = ("dense", "bm25", "hybrid")
DOCUMENT_DEPTH = 100  # deepest cut-off reported (Recall@100)


@dataclass(frozen=True)
class BeirQuery:
    id: str
    text: str
    qrels: dict[str, int]  # corpus id → graded relevance


@dataclass(frozen=True)
class BeirDataset:
    folder: Path
    split: str
    corpus_path: Path
    queries: list[BeirQuery]


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    """The queries of `split` that have at least one relevant document, with their qrels."""
    corpus_path, queries_path = folder / "corpus.jsonl", folder / "queries.jsonl"
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for path in (corpus_path, queries_path, qrels_path):
        if not path.is_file():
            raise ValueError(f"{folder} is not a BEIR folder for split {split!r}: {path.name} is missing")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        for row in rows:
            if len(row) < 3 or row[0] == "query-id":  # header
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
    queries = []
    with queries_path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                entry = json.loads(line)
                judged = qrels.get(str(entry["_id"]), {})
                if any(grade > 0 for grade in judged.values()):
                    queries.append(BeirQuery(str(entry["_id"]), entry["text"], judged))
    return BeirDataset(folder, split, corpus_path, queries)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def document_file_name(corpus_id: str) -> str:
    """A file name for a corpus id; ids that need escaping get a hash suffix so two never collide."""
    safe = _UNSAFE.sub("_", corpus_id)[:80]
    if safe != corpus_id or safe.startswith("."):  # leading dots would be excluded as hidden files
        safe = f"{safe.lstrip('.')}-{hashlib.sha1(corpus_id.encode()).hexdigest()[:8]}"
    return f"{safe}.txt"


def write_corpus_documents(corpus_path: Path, docs_dir: Path) -> dict[str, str]:
    """Write each corpus entry as `<safe id>.txt` (title, blank line, text); return file name → corpus id.

    Files whose content is already there are left alone, so their mtime and hash stay put.
    """
    docs_dir.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    with corpus_path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            entry = json.loads(line)
            corpus_id = str(entry["_id"])
            title, text = (entry.get("title") or "").strip(), (entry.get("text") or "").strip()
            content = f"{title}\n\n{text}\n" if title else f"{text}\n"
            name = document_file_name(corpus_id)
            names[name] = corpus_id
            path = docs_dir / name
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                path.write_text(content, encoding="utf-8")
    return names


def work_dir_for(path: Path, root: Path) -> Path:
    """A work folder named by the file's parent and stem and keyed by its content hash."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return root / f"beir-{path.parent.name}-{digest}"


@dataclass(frozen=True)
class Configuration:
    retriever: str  # dense | bm25 | hybrid
    rerank: bool = False

    @property
    def name(self) -> str:
        return f"{self.retriever}+rerank" if self.rerank else self.retriever


def configurations(retrievers: Sequence[str], rerank: bool) -> list[Configuration]:
    unknown = [r for r in retrievers if r not in RETRIEVERS]
    if unknown:
        raise ValueError(f"--retriever must be one of {', '.join(RETRIEVERS)}, not {', '.join(map(repr, unknown))}")
    plain = [Configuration(r) for r in dict.fromkeys(retrievers)]
    return plain + ([Configuration(c.retriever, True) for c in plain] if rerank else [])


class DocumentRanker:
    """Chunks from a retriever (optionally reranked) → corpus ids ranked by their best chunk."""

    def __init__(self, retriever, file_to_corpus_id: dict[str, str], *, chunk_depth: int,
                 reranker=None, rerank_depth: int = 100) -> None:
        self.retriever = retriever
        self.file_to_corpus_id = file_to_corpus_id
        self.chunk_depth = chunk_depth
        self.reranker = reranker
        self.rerank_depth = rerank_depth

    def run(self, query: str) -> list[str]:
        passages = self.retriever.run(query, top_k=self.chunk_depth).passages
        if self.reranker is not None and passages:
            head, tail = passages[: self.rerank_depth], passages[self.rerank_depth :]
            order = self.reranker.run(query, [p.text for p in head]).order
            passages = [head[i] for i in order] + tail
        ranked: dict[str, None] = {}
        for passage in passages:
            corpus_id = self.file_to_corpus_id.get(Path(passage.source).name)
            if corpus_id is not None:
                ranked.setdefault(corpus_id, None)
        return list(ranked)


@dataclass
class QueryRecord:
    configuration: str
    query_id: str
    query: str
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    latency_ms: float
    relevant: dict[str, int]
    top_10: list[str]
    first_relevant_rank: int | None  # 1-based, within the top 100

    def to_json(self) -> dict:
        data = asdict(self)
        for name in ("ndcg", "recall", "mrr"):
            for key in [k for k in data if k.startswith(f"{name}_at_")]:
                data[f"{name}@{key.rsplit('_', 1)[1]}"] = data.pop(key)
        return data


@dataclass
class ConfigurationReport:
    name: str
    retriever: str
    rerank: bool
    queries: int = 0
    # None when skipped: a configuration that did not run has no scores (not zeros)
    ndcg_at_10: float | None = None
    recall_at_10: float | None = None
    recall_at_100: float | None = None
    mrr_at_10: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    skipped: str | None = None  # why this configuration did not run (e.g. no reranker offline)

    def to_json(self) -> dict:
        return {
            "name": self.name, "retriever": self.retriever, "rerank": self.rerank, "queries": self.queries,
            "ndcg@10": self.ndcg_at_10, "recall@10": self.recall_at_10, "recall@100": self.recall_at_100,
            "mrr@10": self.mrr_at_10, "latency_ms_p50": self.latency_ms_p50, "latency_ms_p95": self.latency_ms_p95,
            "skipped": self.skipped,
        }


@dataclass
class IndexInfo:
    folder: str
    documents: int
    chunks: int
    fingerprint: str | None
    files_ingested: int  # files (re)read this run; 0 when the index was reused as is
    chunks_embedded: int  # chunk texts run through the embedder this run
    seconds: float

    @property
    def reused(self) -> bool:
        return self.files_ingested == 0 and self.chunks_embedded == 0


@dataclass
class RetrievalReport:
    beir: str
    split: str
    index: IndexInfo
    configurations: list[ConfigurationReport]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """One configuration: its metrics at top level. Several: a list, and the main one's metrics on top."""
        ran = [c for c in self.configurations if c.skipped is None]
        main = next((c for c in ran if c.name == "hybrid"), ran[0] if ran else self.configurations[0])
        data = {key: value for key, value in main.to_json().items() if key not in ("skipped",)}
        data.update(beir=self.beir, split=self.split, index={**asdict(self.index), "reused": self.index.reused},
                    notes=self.notes)
        if len(self.configurations) > 1:
            data["configurations"] = [c.to_json() for c in self.configurations]
        return data


def evaluate_configuration(name: str, queries: list[BeirQuery], ranker: DocumentRanker, *,
                           on_progress: ProgressCallback | None = None) -> list[QueryRecord]:
    records = []
    for done, query in enumerate(queries, start=1):
        started = time.perf_counter()
        ranked = ranker.run(query.text)[:DOCUMENT_DEPTH]
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        first = next((rank for rank, doc in enumerate(ranked, start=1) if query.qrels.get(doc, 0) > 0), None)
        records.append(QueryRecord(
            configuration=name, query_id=query.id, query=query.text,
            ndcg_at_10=ndcg_at_k(ranked, query.qrels, 10), recall_at_10=recall_at_k(ranked, query.qrels, 10),
            recall_at_100=recall_at_k(ranked, query.qrels, 100), mrr_at_10=mrr_at_k(ranked, query.qrels, 10),
            latency_ms=elapsed, relevant=query.qrels, top_10=ranked[:10], first_relevant_rank=first,
        ))
        if on_progress:
            on_progress(done, len(queries))
    return records


def summarise(configuration: Configuration, records: list[QueryRecord]) -> ConfigurationReport:
    n = max(len(records), 1)

    def mean(metric: str) -> float:
        return round(sum(getattr(r, metric) for r in records) / n, 4)

    latencies = [r.latency_ms for r in records]
    return ConfigurationReport(
        configuration.name, configuration.retriever, configuration.rerank, queries=len(records),
        ndcg_at_10=mean("ndcg_at_10"), recall_at_10=mean("recall_at_10"), recall_at_100=mean("recall_at_100"),
        mrr_at_10=mean("mrr_at_10"),
        latency_ms_p50=round(percentile(latencies, 50), 2), latency_ms_p95=round(percentile(latencies, 95), 2),
    )


def report_stem(report: RetrievalReport) -> str:
    return f"retrieval-{Path(report.beir).name}-{report.split}"


def eval_table(report: RetrievalReport, records: list[QueryRecord]) -> EvalTable:
    """Metrics per configuration and each configuration's per-query latencies (Markdown and charts)."""
    table = EvalTable(f"{Path(report.beir).name} ({report.split})", ["ndcg@10", "recall@10", "recall@100", "mrr@10"],
                      notes=list(report.notes))
    for configuration in report.configurations:
        if configuration.skipped:
            table.notes.append(f"{configuration.name} skipped: {configuration.skipped}")
            continue
        values = configuration.to_json()
        table.rows[configuration.name] = {m: values[m] for m in table.metrics}
        table.latency_ms[configuration.name] = [r.latency_ms for r in records if r.configuration == configuration.name]
    return table


def write_outputs(report: RetrievalReport, records: list[QueryRecord], out: Path) -> list[Path]:
    """`retrieval-<folder>-<split>.json` (summary), `.jsonl` (one line per query and configuration),
    `.md` (table) and the metric and latency charts."""
    stem = report_stem(report)
    written = write_report(eval_table(report, records), report.to_json(), out, stem)
    per_query = out / f"{stem}.jsonl"
    with per_query.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
    return [*written, per_query]


def ingest_corpus(pipeline, store, docs_dir: Path) -> IndexInfo:
    """Ingest the written documents (unchanged files are skipped) and describe the index that results."""
    report = pipeline.run([docs_dir], prune=True)
    with store.reader() as index:
        stats = index.stats()
    return IndexInfo(
        folder=str(stats.index_dir), documents=stats.documents, chunks=stats.chunks, fingerprint=stats.fingerprint,
        files_ingested=report.ingested, chunks_embedded=report.chunks_embedded, seconds=round(report.seconds, 2),
    )


@dataclass
class RetrievalRun:
    """What `run_retrieval` measured: the report, the per-query records, and the pipeline version."""

    report: RetrievalReport
    records: list[QueryRecord]
    queries: int
    version: str


def run_retrieval(beir: Path, *, split: str = "test", retrievers: Sequence[str] = ("hybrid",), rerank: bool = False,
                  rerank_depth: int | None = None, limit: int = 0, work: Path, settings=None,  # noqa: ANN001
                  on_ingest: ProgressCallback | None = None,
                  on_query: Callable[[str, int, int], None] | None = None) -> RetrievalRun:
    """Index a BEIR corpus under `work` (reused when unchanged) and rank its queries' documents with each of the
    `retrievers` (dense, bm25, hybrid), and each reranked too when `rerank`. `on_ingest(files_done, files_total)`
    follows the indexing, `on_query(configuration, done, total)` the queries."""
    from rag.components import build_ingest_pipeline, build_reranker, build_retriever, build_store
    from rag.settings import Settings

    settings = settings or Settings()
    chosen = configurations(retrievers, rerank)
    dataset = load_beir(beir, split)
    queries = dataset.queries[:limit] if limit else dataset.queries
    if not queries:
        raise ValueError(f"{beir} has no queries with relevant documents in qrels/{split}.tsv")
    folder = work_dir_for(dataset.corpus_path, work)
    file_to_corpus_id = write_corpus_documents(dataset.corpus_path, folder / "docs")
    store = build_store(settings, folder / "index")
    pipeline = build_ingest_pipeline(settings, store, on_progress=None if on_ingest is None else (
        lambda update: on_ingest(update.files_done, update.files_total)))
    index_info = ingest_corpus(pipeline, store, folder / "docs")

    reranker, rerank_note = build_reranker(settings) if rerank else (None, None)
    # Documents are ranked by their best chunk, so fetch twice as many chunks as documents scored.
    chunk_depth = 2 * DOCUMENT_DEPTH
    weights = {"dense": {"bm25_weight": 0.0}, "bm25": {"dense_weight": 0.0}, "hybrid": {}}
    reports, records, notes = [], [], [rerank_note] if rerank_note else []
    with store.reader() as index:
        for configuration in chosen:
            if configuration.rerank and reranker is None:
                reports.append(ConfigurationReport(configuration.name, configuration.retriever, True,
                                                   skipped=rerank_note))
                continue
            chunk_retriever = build_retriever(
                settings, index, pipeline.embedder, top_k=chunk_depth,
                dense_depth=max(settings.retrieval.dense_depth, chunk_depth),
                bm25_depth=max(settings.retrieval.bm25_depth, chunk_depth), **weights[configuration.retriever])
            ranker = DocumentRanker(chunk_retriever, file_to_corpus_id, chunk_depth=chunk_depth,
                                    reranker=reranker if configuration.rerank else None,
                                    rerank_depth=rerank_depth or settings.rerank.depth)
            progress = None if on_query is None else (
                lambda done, total, name=configuration.name: on_query(name, done, total))
            done = evaluate_configuration(configuration.name, queries, ranker, on_progress=progress)
            records.extend(done)
            reports.append(summarise(configuration, done))
    report = RetrievalReport(str(beir), split, index_info, reports, notes)
    version = f"{index_info.fingerprint}|reranker:{settings.rerank.model if rerank else 'none'}"
    return RetrievalRun(report, records, len(queries), version)
