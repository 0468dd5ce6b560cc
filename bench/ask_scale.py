"""End-to-end `POST /ask` latency at 10k chunks and at 100k (or 1M): does the service stay fast as the index grows?

    HF_HUB_OFFLINE=1 .venv/bin/python bench/ask_scale.py --sizes 10000 100000 --out bench/out/ask-scale.json

For each size an index is written (once; reused by later runs) holding the real chunks of
the FastAPI docs (English pages, text and vectors from the default ingest, as bench/ann.py
makes them) plus synthetic chunks up to the size: each copies a real chunk's words in a
shuffled order (its BM25 terms likewise) with a vector drawn around that chunk's vector
(bench/ann.py's "noise" generator, the harder one). Nothing is embedded for the synthetic chunks, so building
1M takes minutes, not days; the index itself (SQLite, BM25, FAISS with the default
settings: HNSW from 200k vectors) is the one the service builds, through `IndexWriter`, with the sentence
vectors the ingest stores (every chunk's sentences embedded for real, ~5 minutes at 100k; left out with
--no-sentence-vectors, in folders of their own).

Then `rag serve` runs over each index in turn and one client asks the docs' section
headings (the same --questions for both sizes, sequentially, after --warm requests),
reporting p50 / p90 / p95 of the whole request (extractive unless --mode says otherwise) and the ratio
of the p50s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the project, so bench/ingest.py does not shadow `ingest`

from ann import Synthetic, real_vectors  # noqa: E402
from load import free_port, percentile, start_server  # noqa: E402


def real_chunks(work: Path):
    """Every stored chunk of the FastAPI docs index, with its vector and BM25 terms."""
    from index.store import IndexStore

    with IndexStore(work / "fastapi-index").reader() as reader:
        ids, vectors = reader.store.all_chunk_vectors(reader.vectors.dimension)
        chunks = reader.chunks(ids.tolist())
        stored = reader.store.all_chunk_terms()
        terms = dict(zip(stored.ids, stored.terms, strict=True))
    ordered = [chunks[i] for i in ids.tolist()]
    return ordered, [terms[i] for i in ids.tolist()], vectors.copy()


def build_index(folder: Path, size: int, work: Path, per_doc: int = 100, *, sentence_vectors: bool = True) -> None:
    from generators.text.sentence_reader import SENTENCE_SPLIT_VERSION, split_sentences
    from index.docstore import ChunkRecord, DocumentRecord
    from index.store import IndexStore
    from rag.components import build_embedder, build_vector_backend
    from rag.settings import Settings

    if (folder / "index" / "docstore.sqlite").is_file():
        return
    chunks, terms, vectors = real_chunks(work)
    embedder = build_embedder(Settings()) if sentence_vectors else None

    def store_sentences(writer, keyed_texts: list[tuple[str, str]]) -> None:
        """What the ingest stores beside each chunk (RAG_INGEST__SENTENCE_VECTORS): its sentences' vectors."""
        if embedder is None:
            return
        pieces = [[text[a:b] for a, b in split_sentences(text)] for _, text in keyed_texts]
        flat = embedder.embed([piece for chunk in pieces for piece in chunk]).vectors
        rows, start = {}, 0
        for (key, _), chunk in zip(keyed_texts, pieces, strict=True):
            rows[key] = flat[start : start + len(chunk)]
            start += len(chunk)
        writer.store.store_sentence_vectors(rows)
        writer.set_meta("sentence_split", SENTENCE_SPLIT_VERSION)

    generator = Synthetic(vectors, spread=0.6, seed=size, kind="noise")
    rng = np.random.default_rng(size)
    store = IndexStore(folder / "index", backend=build_vector_backend(Settings()))
    started = time.perf_counter()
    with store.writer() as writer:
        # The real chunks, one document each (their own text and offsets).
        for chunk, chunk_terms, vector in zip(chunks, terms, vectors, strict=True):
            record = DocumentRecord(f"real-{chunk.chunk_id}", chunk.source + f"#{chunk.seq}", f"h{chunk.chunk_id}",
                                    "markdown", chunk.title, chunk.text, len(chunk.text))
            writer.replace_document(record, [ChunkRecord(0, 0, len(chunk.text), chunk.text, chunk.heading, None,
                                                         f"real-{chunk.chunk_id}", chunk_terms)], vector[None, :])
        store_sentences(writer, [(f"real-{chunk.chunk_id}", chunk.text) for chunk in chunks])
        made, doc = len(chunks), 0
        while made < size:
            count = min(per_doc, size - made)
            centres = rng.integers(0, len(chunks), count)
            synthetic = generator.draw(count)
            texts, records, offset = [], [], 0
            for seq, centre in enumerate(centres.tolist()):
                words = chunks[centre].text.split()
                text = " ".join(rng.permutation(words).tolist())
                texts.append(text)
                records.append(ChunkRecord(seq, offset, offset + len(text), text, chunks[centre].heading, None,
                                           f"s{doc}-{seq}", list(rng.permutation(terms[centre]))))
                offset += len(text) + 1
            body = " ".join(texts)
            writer.replace_document(DocumentRecord(f"syn-{doc}", f"/synthetic/{doc}.md", f"s{doc}", "markdown",
                                                   None, body, len(body)), records, synthetic)
            store_sentences(writer, [(record.text_hash, record.text) for record in records])
            made += count
            doc += 1
            if doc % 1000 == 0:
                print(f"  {made:,} chunks staged ({time.perf_counter() - started:.0f} s)", flush=True)
        writer.commit()
    print(f"index of {size:,} chunks built in {time.perf_counter() - started:.0f} s", flush=True)


def measure(folder: Path, questions: list[str], warm: int, mode: str) -> dict:
    port = free_port()
    server = start_server(folder, port)
    try:
        url = f"http://127.0.0.1:{port}/ask"
        latencies, timings = [], []
        with httpx.Client(timeout=120) as client:
            for question in questions[:warm]:
                client.post(url, json={"question": question, "mode": mode}).raise_for_status()
            for question in questions:
                started = time.perf_counter()
                response = client.post(url, json={"question": question, "mode": mode})
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                timings.append(response.json()["timings_ms"])
        stages = {stage: round(statistics.median(t.get(stage, 0.0) for t in timings), 1) for stage in timings[0]}
        return {"p50_ms": round(percentile(latencies, 50), 1), "p90_ms": round(percentile(latencies, 90), 1),
                "p95_ms": round(percentile(latencies, 95), 1), "stage_p50_ms": stages}
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--warm", type=int, default=5)
    parser.add_argument("--mode", choices=["extractive", "generative"], default="extractive",
                        help="The answer mode asked for (the service's default is generative).")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "ann")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--build-only", action="store_true", help="Write the indexes, measure nothing.")
    parser.add_argument("--no-sentence-vectors", action="store_true",
                        help="Build the indexes without the sentence vectors the ingest stores by default.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _, headings = real_vectors(args.work)
    questions = list(np.random.default_rng(3).permutation(headings)[: args.questions])
    results = {}
    for size in args.sizes:
        folder = args.work / (f"ask-{size}" if args.no_sentence_vectors else f"ask-{size}-sv")
        build_index(folder, size, args.work, sentence_vectors=not args.no_sentence_vectors)
        if args.build_only:
            continue
        results[size] = measure(folder, questions, args.warm, args.mode)
        print(json.dumps({"chunks": size, **results[size]}), flush=True)
    if len(args.sizes) > 1 and not args.build_only:
        small, large = min(args.sizes), max(args.sizes)
        results["p50_ratio"] = round(results[large]["p50_ms"] / results[small]["p50_ms"], 2)
        print(f"p50 at {large:,} / p50 at {small:,}: {results['p50_ratio']}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
