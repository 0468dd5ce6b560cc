"""Retrieval quality and speed against peers: this project vs LangChain FAISS vs txtai, one BEIR folder, one run.

What it measures, on the queries of a BEIR split that have relevant documents (default: SciFact test):

* this project's dense, bm25 and hybrid retrieval, and hybrid+rerank when a reranker resolves, built
  exactly as `rag eval retrieval` builds them (`Settings()` defaults: the corpus written as one
  `.txt` per entry, ingested into the index cached under `--work`, 200 chunks fetched per query,
  documents ranked by their best chunk);
* LangChain: `FAISS.from_documents` over `HuggingFaceEmbeddings`, one document per corpus entry
  (title, blank line, text), `similarity_search(query, k=100)`;
* txtai: `Embeddings(path=<model folder>, content=False)` indexing (id, text) tuples, `search(query, 100)`.

Every system uses the same embedding model, the offline all-MiniLM-L6-v2 folder that
`resolve_model("sentence-transformers/all-MiniLM-L6-v2", ...)` finds (this project runs it through
its default onnx-int8 backend; LangChain through sentence-transformers; txtai through its own
transformers mean pooling, with txtai's defaults unless `--txtai-maxlength` / `--txtai-exact` say
otherwise). Per system: nDCG@10, Recall@10, Recall@100 and MRR@10 from `rag/evaluation/metrics.py`
(through `evaluate_configuration`, the same qrels for all), index build time (wall and CPU seconds,
models loaded beforehand and not counted), and per-query latency p50/p95 in ms: one query at a time,
the wall time of the call that returns the ranked corpus ids. Queries are interleaved across systems
(query 1 on every system, then query 2, ...; the starting system rotates) so that load from other
jobs on a shared machine falls on all systems alike; each system answers one warm-up query first.
The last column is each system's p50 over this project's hybrid p50.

Threads: this project embeds a query on one onnxruntime thread; LangChain and txtai run torch with
torch's default thread count (all cores) unless `--torch-threads` sets it. On a machine whose cores
are busy with other jobs, two torch threads can be an order of magnitude slower per query than one
(each op waits for its slower thread), so note the load (recorded in the JSON) and compare with
`--torch-threads 1` there.

This project's index is cached under `--work` and reused when the corpus has not changed: its build
time is then the time to find nothing to do (marked "reused"); point `--work` at an empty folder to
time a fresh build.

Full run (SciFact test, 300 queries, 5,183 abstracts):

    HF_HUB_OFFLINE=1 .venv/bin/python bench/peer_retrieval.py --beir ../shared/data/retrieval/scifact \\
        --split test --out bench/out/peer_retrieval.json

Smoke test (30 queries, the first 400 abstracts plus every abstract relevant to those queries):

    HF_HUB_OFFLINE=1 .venv/bin/python bench/peer_retrieval.py --limit 30 --corpus-limit 400 \\
        --work /tmp/peer-smoke --out /tmp/peer-smoke.json

Needs the bench extra: pip install -e ".[bench]"
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generators.resolve import resolve_model  # noqa: E402
from rag.components import build_ingest_pipeline, build_reranker, build_retriever, build_store  # noqa: E402
from rag.evaluation.retrieval import (  # noqa: E402
    DOCUMENT_DEPTH, BeirQuery, Configuration, ConfigurationReport, DocumentRanker, QueryRecord,
    evaluate_configuration, ingest_corpus, load_beir, summarise, work_dir_for, write_corpus_documents,
)
from rag.settings import Settings  # noqa: E402

INSTALL_HINT = 'pip install -e ".[bench]"'
OURS = ("dense", "bm25", "hybrid", "hybrid+rerank")
PEERS = ("langchain-faiss", "txtai")
SYSTEMS = OURS + PEERS
NEEDS = {"langchain-faiss": ("langchain_community", "langchain_huggingface", "faiss"), "txtai": ("txtai",)}
EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class System:
    """One retrieval system, built and ready: `run(query)` returns corpus ids, best first."""

    name: str
    run: Callable[[str], list[str]]
    build_seconds: float | None = None
    build_cpu_seconds: float | None = None
    reused_index: bool = False
    details: dict = field(default_factory=dict)
    skipped: str | None = None


@dataclass
class Corpus:
    path: Path  # corpus.jsonl (the BEIR one, or the --corpus-limit sample)
    entries: list[tuple[str, str]]  # (corpus id, title + blank line + text)


# -- data -----------------------------------------------------------------------------------


def entry_text(entry: dict) -> str:
    title, text = (entry.get("title") or "").strip(), (entry.get("text") or "").strip()
    return f"{title}\n\n{text}" if title else text


def load_corpus(corpus_path: Path, queries: list[BeirQuery], corpus_limit: int, work: Path) -> Corpus:
    """The whole corpus, or (smoke tests) its first `corpus_limit` entries plus every document relevant
    to the kept queries, written to a corpus.jsonl of its own so this project indexes the same sample."""
    with corpus_path.open(encoding="utf-8") as handle:
        rows = [line for line in handle if line.strip()]
    if corpus_limit:
        relevant = {doc for q in queries for doc, grade in q.qrels.items() if grade > 0}
        rows = [row for i, row in enumerate(rows)
                if i < corpus_limit or str(json.loads(row)["_id"]) in relevant]
        corpus_path = work / f"{corpus_path.parent.name}-sample" / "corpus.jsonl"
        corpus_path.parent.mkdir(parents=True, exist_ok=True)
        corpus_path.write_text("".join(r if r.endswith("\n") else r + "\n" for r in rows), encoding="utf-8")
    entries = []
    for row in rows:
        entry = json.loads(row)
        entries.append((str(entry["_id"]), entry_text(entry)))
    return Corpus(corpus_path, entries)


# -- timing helpers ---------------------------------------------------------------------------


class Stopwatch:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self) -> Stopwatch:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = round(time.perf_counter() - self.wall, 2)
        self.cpu = round(time.process_time() - self.cpu, 2)


class Ranker:
    """Adapts a system to `evaluate_configuration`, which times `ranker.run(query)` for every system alike."""

    def __init__(self, run: Callable[[str], list[str]]) -> None:
        self.run = run


# -- this project -----------------------------------------------------------------------------


def build_ours(names: list[str], corpus: Corpus, work: Path, model_folder: Path, stack: ExitStack) -> list[System]:
    """dense / bm25 / hybrid (/ hybrid+rerank) over one index, as `rag eval retrieval` builds them."""
    settings = Settings()
    folder = work_dir_for(corpus.path, work)
    file_to_corpus_id = write_corpus_documents(corpus.path, folder / "docs")
    store = build_store(settings, folder / "index")
    pipeline = build_ingest_pipeline(settings, store)
    if pipeline.embedder.resolved.path != model_folder:
        raise SystemExit(f"this project's embedder resolves to {pipeline.embedder.resolved.path}, not {model_folder}: "
                         f"unset RAG_EMBEDDER__MODEL so every system uses the same model")
    pipeline.embedder.warm_up()  # load (and convert once) before timing, as the peers load theirs first
    with Stopwatch() as clock:
        index_info = ingest_corpus(pipeline, store, folder / "docs")
    details = {
        "index": {"folder": index_info.folder, "documents": index_info.documents, "chunks": index_info.chunks,
                  "fingerprint": index_info.fingerprint, "files_ingested": index_info.files_ingested,
                  "chunks_embedded": index_info.chunks_embedded},
        "embedder_backend": settings.embedder.backend, "chunk_tokens": settings.ingest.chunk_tokens,
    }
    reranker, rerank_note = build_reranker(settings) if "hybrid+rerank" in names else (None, None)
    chunk_depth = 2 * DOCUMENT_DEPTH  # documents are ranked by their best chunk
    weights = {"dense": {"bm25_weight": 0.0}, "bm25": {"dense_weight": 0.0}, "hybrid": {}, "hybrid+rerank": {}}
    index = stack.enter_context(store.reader())  # open until every query has run
    systems = []
    for name in names:
        system = System(name, run=lambda _q: [], build_seconds=clock.wall, build_cpu_seconds=clock.cpu,
                        reused_index=index_info.reused, details=dict(details))
        if name == "hybrid+rerank":
            system.details["rerank_depth"] = settings.rerank.depth
            if rerank_note:
                system.details["note"] = rerank_note
            if reranker is None:
                system.skipped = rerank_note or "no reranker"
                systems.append(system)
                continue
        retriever = build_retriever(
            settings, index, pipeline.embedder, top_k=chunk_depth,
            dense_depth=max(settings.retrieval.dense_depth, chunk_depth), bm25_depth=max(settings.retrieval.bm25_depth, chunk_depth),
            **weights[name],
        )
        ranker = DocumentRanker(retriever, file_to_corpus_id, chunk_depth=chunk_depth,
                                reranker=reranker if name == "hybrid+rerank" else None,
                                rerank_depth=settings.rerank.depth)
        system.run = ranker.run
        systems.append(system)
    return systems


# -- LangChain ----------------------------------------------------------------------------------


def build_langchain(corpus: Corpus, model_folder: Path) -> System:
    """`FAISS.from_documents` over `HuggingFaceEmbeddings`, one Document per corpus entry."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings

    embeddings = HuggingFaceEmbeddings(model_name=str(model_folder))
    embeddings.embed_query("warm up")  # model loaded before timing
    documents = [Document(page_content=text, metadata={"id": corpus_id}) for corpus_id, text in corpus.entries]
    with Stopwatch() as clock:
        store = FAISS.from_documents(documents, embeddings)

    def run(query: str) -> list[str]:
        return [doc.metadata["id"] for doc in store.similarity_search(query, k=DOCUMENT_DEPTH)]

    return System("langchain-faiss", run, clock.wall, clock.cpu, details={
        "faiss_index": type(store.index).__name__, "distance": str(store.distance_strategy),
        "max_seq_length": embeddings._client.max_seq_length,
    })


# -- txtai ---------------------------------------------------------------------------------------


def build_txtai(corpus: Corpus, model_folder: Path, maxlength: int | None, exact: bool) -> System:
    """txtai `Embeddings` over the local model folder, content storage off, (id, text) tuples."""
    from txtai import Embeddings

    config: dict = {"path": str(model_folder), "content": False}
    if maxlength:
        config["maxlength"] = maxlength
    if exact:
        config["faiss"] = {"components": "IDMap,Flat"}
    embeddings = Embeddings(**config)  # loads the model
    embeddings.transform("warm up")
    with Stopwatch() as clock:
        embeddings.index(corpus.entries)

    def run(query: str) -> list[str]:
        return [str(corpus_id) for corpus_id, _score in embeddings.search(query, DOCUMENT_DEPTH)]

    ann = embeddings.ann
    return System("txtai", run, clock.wall, clock.cpu, details={
        "vectors": type(embeddings.model.model).__name__, "method": embeddings.config.get("method"),
        "maxlength": embeddings.model.model.maxlength, "ann_backend": embeddings.config.get("backend"),
        "faiss_components": ann.config.get("build", {}).get("settings", {}).get("components"),
        "nprobe": ann.nprobe() if hasattr(ann, "nprobe") else None,
    })


# -- evaluation and output ------------------------------------------------------------------


def evaluate(systems: list[System], queries: list[BeirQuery]) -> dict[str, list[QueryRecord]]:
    """Each query on every system in turn (the first system rotates), after one warm-up query each."""
    ready = [s for s in systems if s.skipped is None]
    for system in ready:
        system.run("warm up")  # loads anything still lazy (reranker, query paths); not a benchmark query
    records: dict[str, list[QueryRecord]] = {s.name: [] for s in ready}
    for i, query in enumerate(queries):
        for system in ready[i % len(ready):] + ready[: i % len(ready)]:
            records[system.name] += evaluate_configuration(system.name, [query], Ranker(system.run))
        if (i + 1) % 25 == 0 or i + 1 == len(queries):
            print(f"  {i + 1}/{len(queries)} queries", file=sys.stderr, flush=True)
    return records


def configuration(name: str) -> Configuration:
    return Configuration("hybrid", rerank=True) if name == "hybrid+rerank" else Configuration(name)


def result_rows(systems: list[System], records: dict[str, list[QueryRecord]]) -> list[dict]:
    reports = {s.name: summarise(configuration(s.name), records[s.name]) for s in systems if s.skipped is None}
    hybrid = reports.get("hybrid")
    rows = []
    for system in systems:
        report = reports.get(system.name) or ConfigurationReport(system.name, system.name, False, skipped=system.skipped)
        ratio = (round(report.latency_ms_p50 / hybrid.latency_ms_p50, 2)
                 if hybrid and report.latency_ms_p50 is not None and hybrid.latency_ms_p50 else None)
        rows.append({
            "system": system.name, "queries": report.queries, "ndcg@10": report.ndcg_at_10,
            "recall@10": report.recall_at_10, "recall@100": report.recall_at_100, "mrr@10": report.mrr_at_10,
            "build_seconds": system.build_seconds, "build_cpu_seconds": system.build_cpu_seconds,
            "reused_index": system.reused_index, "latency_ms_p50": report.latency_ms_p50,
            "latency_ms_p95": report.latency_ms_p95, "p50_vs_hybrid": ratio, "skipped": system.skipped,
            "details": system.details,
        })
    return rows


def markdown_table(rows: list[dict]) -> str:
    def number(value, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = ["| system | nDCG@10 | Recall@10 | Recall@100 | MRR@10 | build s | p50 ms | p95 ms | p50 × hybrid |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["skipped"]:
            lines.append(f"| {row['system']} | skipped: {row['skipped']} | | | | | | | |")
            continue
        build = number(row["build_seconds"], 1) + (" (reused)" if row["reused_index"] else "")
        lines.append(
            f"| {row['system']} | {number(row['ndcg@10'], 3)} | {number(row['recall@10'], 3)} | "
            f"{number(row['recall@100'], 3)} | {number(row['mrr@10'], 3)} | {build} | "
            f"{number(row['latency_ms_p50'], 1)} | {number(row['latency_ms_p95'], 1)} | {number(row['p50_vs_hybrid'], 2)} |")
    return "\n".join(lines)


def environment() -> dict:
    import faiss
    import torch

    versions = {}
    for package in ("torch", "sentence-transformers", "transformers", "onnxruntime", "faiss-cpu",
                    "langchain-community", "langchain-huggingface", "txtai"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "faiss_omp_threads": faiss.omp_get_max_threads(), "loadavg": os.getloadavg(), "versions": versions}


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "data" / "retrieval" / "scifact",
                        help="A BEIR-format folder (default: ../shared/data/retrieval/scifact).")
    parser.add_argument("--split", default="test", help="Which qrels/<split>.tsv to score against.")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N queries (0 = all).")
    parser.add_argument("--corpus-limit", type=int, default=0,
                        help="Smoke tests only: the first N corpus entries plus every document relevant to the kept queries.")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), metavar="SYSTEM",
                        help=f"Which systems to run (default: all of {', '.join(SYSTEMS)}).")
    parser.add_argument("--work", type=Path, default=Path(".rag-eval"), help="Where this project's index is cached.")
    parser.add_argument("--out", type=Path, default=Path("bench/out/peer_retrieval.json"), help="The JSON summary.")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads for the torch-based systems (LangChain, txtai, the reranker); "
                             "default: torch's own (all cores).")
    parser.add_argument("--txtai-maxlength", type=int, default=None,
                        help="Tokens txtai reads per text (default: txtai's own, the tokenizer's model_max_length).")
    parser.add_argument("--txtai-exact", action="store_true",
                        help="Exact search in txtai (IDMap,Flat); by default txtai picks IVF above 5,000 vectors.")
    return parser.parse_args(argv)


def check_imports(systems: list[str]) -> None:
    missing = sorted({m for s in systems for m in NEEDS.get(s, ()) if importlib.util.find_spec(m) is None})
    if missing:
        raise SystemExit(f"missing {', '.join(missing)} for --systems {' '.join(systems)}: {INSTALL_HINT}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    names = list(dict.fromkeys(args.systems))
    check_imports(names)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    started = time.perf_counter()
    dataset = load_beir(args.beir, args.split)
    queries = dataset.queries[: args.limit] if args.limit else dataset.queries
    if not queries:
        raise SystemExit(f"{args.beir} has no queries with relevant documents in qrels/{args.split}.tsv")
    corpus = load_corpus(dataset.corpus_path, queries, args.corpus_limit, args.work)
    model_folder = resolve_model(EMBEDDER, role="embedder", setting="RAG_EMBEDDER__MODEL").path
    print(f"{args.beir.name} ({args.split}): {len(queries)} queries, {len(corpus.entries)} documents, "
          f"model {model_folder}", file=sys.stderr, flush=True)

    with ExitStack() as stack:
        systems: list[System] = []
        ours = [n for n in names if n in OURS]
        if ours:
            print("building: this project", file=sys.stderr, flush=True)
            systems += build_ours(ours, corpus, args.work, model_folder, stack)
        if "langchain-faiss" in names:
            print("building: langchain-faiss", file=sys.stderr, flush=True)
            systems.append(build_langchain(corpus, model_folder))
        if "txtai" in names:
            print("building: txtai", file=sys.stderr, flush=True)
            systems.append(build_txtai(corpus, model_folder, args.txtai_maxlength, args.txtai_exact))
        systems.sort(key=lambda s: SYSTEMS.index(s.name))
        print("querying (interleaved)", file=sys.stderr, flush=True)
        rows = result_rows(systems, evaluate(systems, queries))
    table = markdown_table(rows)
    print(table)
    summary = {
        "beir": str(args.beir), "split": args.split, "queries": len(queries), "documents": len(corpus.entries),
        "corpus_limit": args.corpus_limit or None, "model": str(model_folder), "systems": rows,
        "environment": environment(), "wall_seconds": round(time.perf_counter() - started, 1), "table": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({summary['wall_seconds']} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
