"""Do the int8 embedders keep retrieval quality? Dense nDCG@10 on BEIR SciFact (test), fp32 vs int8.

The fp32 row is the plain sentence-transformers path (model.encode); the other
rows are this project's embedder backends: "int8" (torch, quantised Linear
layers, FFN output projections kept fp32) and "onnx-int8" (onnxruntime graph,
every MatMul/Attention weight int8 per channel; the `rag ingest` default). All
embed "title + text" of each abstract, exactly as BEIR does. Encoding
throughput of each is reported too (same texts, same process, alternating order).

    .venv/bin/python bench/quantize.py [--beir ../shared/data/retrieval/scifact] [--backends int8 onnx-int8]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_BEIR = ROOT.parent / "shared" / "data" / "retrieval" / "scifact"


def load_beir(folder: Path, split: str) -> tuple[list[str], list[str], dict[str, str], dict[str, dict[str, int]]]:
    doc_ids, texts = [], []
    with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            doc_ids.append(row["_id"])
            texts.append(f"{row.get('title', '')} {row['text']}".strip())
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            queries[row["_id"]] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return doc_ids, texts, {q: queries[q] for q in qrels}, qrels


def ndcg_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def evaluate(doc_vectors: np.ndarray, query_vectors: np.ndarray, doc_ids: list[str],
             query_ids: list[str], qrels: dict[str, dict[str, int]]) -> float:
    scores = query_vectors @ doc_vectors.T
    top = np.argsort(-scores, axis=1)[:, :10]
    return float(np.mean([ndcg_at_10([doc_ids[j] for j in row], qrels[q]) for q, row in zip(query_ids, top)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR)
    parser.add_argument("--split", default="test")
    parser.add_argument("--backends", nargs="*", default=["int8", "onnx-int8"], choices=["int8", "onnx-int8"])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from generators.text.embedder import SentenceEmbedder

    doc_ids, texts, queries, qrels = load_beir(args.beir, args.split)
    query_ids = list(queries)
    fp32 = SentenceEmbedder(backend="torch")

    def plain(batch):  # what a sentence-transformers user runs
        return fp32.model.encode(batch, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    runs = {"fp32 sentence-transformers": plain}
    for backend in args.backends:
        embedder = SentenceEmbedder(backend=backend)
        runs[f"{backend} (this project)"] = lambda b, e=embedder: e.embed(b).vectors
    sample = texts[:300]
    speed: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(2):  # alternate to share out machine noise
        for name, encode in runs.items():
            started = time.perf_counter()
            encode(sample)
            speed[name].append(len(sample) / (time.perf_counter() - started))
    print("| embedder | nDCG@10 | texts/s (300 abstracts, best of 2) |\n|---|---|---|")
    results = {}
    for name, encode in runs.items():
        docs = encode(texts)
        query_vectors = encode([queries[q] for q in query_ids])
        results[name] = evaluate(docs, query_vectors, doc_ids, query_ids, qrels)
        print(f"| {name} | {results[name]:.4f} | {max(speed[name]):.1f} |", flush=True)
    base_name = "fp32 sentence-transformers"
    for name in runs:
        if name != base_name:
            change = 100 * (results[name] - results[base_name]) / results[base_name]
            print(f"{name}: nDCG@10 change {change:+.2f}%, encoding speed {max(speed[name]) / max(speed[base_name]):.2f}x")


if __name__ == "__main__":
    main()
