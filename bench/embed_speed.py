"""Embedding speed: query latency per backend, and ingest throughput in one process vs worker processes.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/embed_speed.py --out bench/out/embed-speed.json

Texts: the chunk texts of the FastAPI docs index that bench/ann.py writes (--work), and
their section headings as queries. Query latency is one `embed_query` call per heading
(p50 / p95, after 10 warm-up calls), as the retriever makes it for each request. Ingest
throughput embeds --chunks chunk texts with `SentenceEmbedder.embed`, as the local ingest
engine does: in this process (onnx-int8 runs its batches on one thread per core; torch
spreads each batch over the cores) and with `processes=2` (RAG_EMBEDDER__PROCESSES: worker
processes with one model and one core each). Backends are run alternately, twice each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def texts_and_queries(work: Path, chunks: int, queries: int) -> tuple[list[str], list[str]]:
    from index.store import IndexStore

    with IndexStore(work / "fastapi-index").reader() as reader:
        ids, _ = reader.store.all_chunk_vectors(reader.vectors.dimension)
        stored = reader.chunks(ids.tolist())
    texts = [stored[i].text for i in ids.tolist()][:chunks]
    headings = sorted({c.heading.strip("# ").strip() for c in stored.values() if c.heading})
    return texts, [h for h in headings if len(h) > 3][:queries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "ann")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from generators.text.embedder import SentenceEmbedder

    texts, queries = texts_and_queries(args.work, args.chunks, args.queries)
    results: dict[str, dict] = {}

    # Query latency, one backend at a time, alternating rounds.
    for _ in range(args.rounds):
        for backend in ("onnx-int8", "torch"):
            embedder = SentenceEmbedder(backend=backend, query_cache_size=0)  # every query embedded, none recalled
            embedder.warm_up()
            for query in queries[:10]:
                embedder.embed_query(query)
            latencies = []
            for query in queries:
                started = time.perf_counter()
                embedder.embed_query(query)
                latencies.append((time.perf_counter() - started) * 1000)
            latencies.sort()
            row = results.setdefault(f"query {backend}", {"p50_ms": [], "p95_ms": []})
            row["p50_ms"].append(round(statistics.median(latencies), 2))
            row["p95_ms"].append(round(latencies[int(0.95 * (len(latencies) - 1))], 2))

    # Ingest throughput: in process vs two worker processes.
    for _ in range(args.rounds):
        for backend in ("onnx-int8", "torch"):
            for processes in (1, 2):
                embedder = SentenceEmbedder(backend=backend, processes=processes)
                embedder.warm_up()
                embedder.embed(texts[:200])  # starts the workers (and warms them) outside the clock
                started = time.perf_counter()
                embedder.embed(texts)
                seconds = time.perf_counter() - started
                embedder.close()
                row = results.setdefault(f"ingest {backend} processes={processes}", {"chunks_per_s": []})
                row["chunks_per_s"].append(round(len(texts) / seconds, 1))
    for name, row in results.items():
        print(name, json.dumps(row), flush=True)
    summary = {
        "query_p50_torch_over_onnx": round(statistics.median(results["query torch"]["p50_ms"])
                                           / statistics.median(results["query onnx-int8"]["p50_ms"]), 2),
        **{f"ingest_{backend}_processes2_over_1": round(
            statistics.median(results[f"ingest {backend} processes=2"]["chunks_per_s"])
            / statistics.median(results[f"ingest {backend} processes=1"]["chunks_per_s"]), 2)
           for backend in ("onnx-int8", "torch")},
    }
    print(json.dumps(summary), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"chunks": len(texts), "queries": len(queries), "results": results,
                                        "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
