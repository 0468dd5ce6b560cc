"""ANN index types at scale: build time, bytes per vector, queries per second and recall@10 against exact search.

    .venv/bin/python bench/ann.py --n 1000000 --out bench/out/ann-1m.json

Data (dimension 384): the real chunk vectors of the FastAPI docs (English pages, ingested
with the default settings into --work), plus synthetic vectors up to --n. A synthetic vector
is a real chunk vector plus Gaussian noise shaped like the real vectors' covariance
(--spread times it), normalised: clusters around real content, not uniform noise, which
no embedding model produces and on which every ANN method looks worse than it is.

Queries: "real" are the docs' section headings embedded by the same model (what a user
might type), "synthetic" are fresh draws from the generator. Recall@10 is measured per
query set against exact inner-product search over all --n vectors.

Indexes are built by the project's own `FaissVectorStore.build` with the settings the
service uses (`FaissIndexConfig`), and milvus-lite through `MilvusVectorStore`. "Single"
QPS sends one query per call on one thread (a request thread of the server); "batched"
sends all queries in one call on all cores. Inexact indexes (IVF-PQ, quantised or PCA-reduced
HNSW) are measured on their codes alone and with the service's exact re-scoring of --refine × k
candidates from the vectors on disk (as the reader does from the docstore; here from a
memory-mapped float32 file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "data" / "corpus" / "fastapi-docs" / "docs" / "en"


def real_vectors(work: Path) -> tuple[np.ndarray, list[str]]:
    """The FastAPI docs' chunk vectors and their distinct section headings (ingested once, reused)."""
    from index.store import IndexStore
    from rag.components import build_ingest_pipeline, build_store
    from rag.settings import Settings

    settings = Settings(index={"dir": work / "fastapi-index"})
    store = build_store(settings)
    report = build_ingest_pipeline(settings, store).run([CORPUS])
    print(f"fastapi docs: {report.files_seen} files, {report.chunks_embedded} chunks embedded now", flush=True)
    with IndexStore(settings.index.dir).reader() as reader:
        ids, vectors = reader.store.all_chunk_vectors(reader.vectors.dimension)
        headings = sorted({c.heading.strip("# ").strip() for c in reader.chunks(ids.tolist()).values() if c.heading})
    return vectors.copy(), [h for h in headings if len(h) > 3]


def embed(texts: list[str]) -> np.ndarray:
    from rag.components import build_embedder
    from rag.settings import Settings

    return build_embedder(Settings()).embed(texts).vectors


class Synthetic:
    """Vectors near the real ones, normalised.

    "blend" (default): a point on the segment between a real vector and one of its 20 nearest
    real neighbours, plus a little covariance-shaped noise: new content between existing
    topics, so the data keeps the low intrinsic dimension of real embeddings. "noise": a real
    vector plus covariance-shaped noise alone: each real chunk becomes a blob of points that
    differ by isotropic-like noise, a much harder case than real data (neighbours within a
    blob are all nearly equally near).
    """

    def __init__(self, real: np.ndarray, spread: float, seed: int, kind: str = "blend") -> None:
        self.real = real
        centred = real - real.mean(axis=0)
        covariance = centred.T @ centred / len(real)
        self.factor = np.linalg.cholesky(covariance + 1e-6 * np.eye(real.shape[1])).astype(np.float32)
        self.spread = spread
        self.kind = kind
        self.rng = np.random.default_rng(seed)
        similarity = real @ real.T
        np.fill_diagonal(similarity, -np.inf)
        self.neighbours = np.argsort(-similarity, axis=1)[:, :20]

    def draw(self, n: int) -> np.ndarray:
        first = self.rng.integers(0, len(self.real), n)
        noise = self.rng.standard_normal((n, self.real.shape[1]), dtype=np.float32) @ self.factor.T
        if self.kind == "noise":
            out = self.real[first] + self.spread * noise
        else:
            second = self.neighbours[first, self.rng.integers(0, self.neighbours.shape[1], n)]
            share = self.rng.random((n, 1), dtype=np.float32)
            out = (1 - share) * self.real[first] + share * self.real[second] + self.spread * noise
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def tied_recall_at(found: np.ndarray, queries: np.ndarray, vectors: np.ndarray, truth: np.ndarray,
                   k: int = 10, epsilon: float = 1e-3) -> float:
    """ann-benchmarks' recall: a result counts when its cosine distance is within `epsilon` of the
    k-th true neighbour's (near-ties are not misses; blended data has many)."""
    counts = []
    for ids, query, true_ids in zip(found, queries, truth):
        kth = float(vectors[true_ids[k - 1]] @ query)
        got = vectors[ids[:k][ids[:k] >= 0]] @ query
        counts.append(min(int(np.sum(got >= kth - epsilon)), k) / k)
    return float(np.mean(counts))


def timed_queries(search, queries: np.ndarray, k: int, repeats: int = 1) -> tuple[np.ndarray, float, float]:
    """(ids, single-query QPS on one thread, batched QPS on all threads), each rate the best of `repeats`
    passes (as ann-benchmarks does: on a shared machine the best pass is the least disturbed one)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    single = batched = 0.0
    for _ in range(repeats):
        faiss.omp_set_num_threads(1)
        started = time.perf_counter()
        rows = [search(q[None, :], k)[0] for q in queries]
        single = max(single, len(queries) / (time.perf_counter() - started))
        faiss.omp_set_num_threads(threads)
        started = time.perf_counter()
        search(queries, k)
        batched = max(batched, len(queries) / (time.perf_counter() - started))
    return np.vstack(rows), single, batched


def file_bytes(store, path: Path) -> int:
    store.write(path)
    size = path.stat().st_size
    path.unlink()
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="Vectors in all (real + synthetic).")
    parser.add_argument("--queries", type=int, default=500, help="Queries per set (real, synthetic).")
    parser.add_argument("--generator", choices=["blend", "noise"], default="blend", help="See Synthetic.")
    parser.add_argument("--spread", type=float, default=None,
                        help="Synthetic noise in real-covariance units (default: 0.15 blend, 0.6 noise).")
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfpq", "milvus-lite"])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 96, 160, 256])
    parser.add_argument("--hnsw-m", type=int, default=None, help="HNSW graph degree (default: the service's).")
    parser.add_argument("--ef-construction", type=int, default=None, help="HNSW build effort (default: the service's).")
    parser.add_argument("--hnsw-storage", nargs="+", default=["flat"], choices=["flat", "sq8", "fp16"],
                        help="HNSW vector storage, one graph each; quantised ones are also measured re-scored.")
    parser.add_argument("--hnsw-pca-dim", type=int, nargs="+", default=[0],
                        help="HNSW over this many principal components (0: all), one graph each per storage.")
    parser.add_argument("--hnsw-reorder", nargs="+", default=["on"], choices=["on", "off"],
                        help="HNSW nodes stored in cluster order (on, the service's default) or as added.")
    parser.add_argument("--refine", type=int, nargs="+", default=[4],
                        help="Re-scoring factors measured for inexact indexes (besides 1, codes alone).")
    parser.add_argument("--repeats", type=int, default=1, help="Timed passes per setting; the best counts.")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--milvus-n", type=int, default=0, help="Cap milvus-lite at this many vectors (0: --n).")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "ann")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.work.mkdir(parents=True, exist_ok=True)

    import faiss

    real, headings = real_vectors(args.work)
    if args.spread is None:
        args.spread = 0.15 if args.generator == "blend" else 0.6
    generator = Synthetic(real, args.spread, seed=0, kind=args.generator)
    started = time.perf_counter()
    vectors = np.empty((args.n, real.shape[1]), dtype=np.float32)
    vectors[: len(real)] = real
    for start in range(len(real), args.n, 100_000):
        stop = min(start + 100_000, args.n)
        vectors[start:stop] = generator.draw(stop - start)
    ids = np.arange(args.n, dtype=np.int64)
    rng = np.random.default_rng(1)
    query_sets = {
        "real": embed(list(rng.permutation(headings)[: args.queries])),
        "synthetic": generator.draw(args.queries),
    }
    all_queries = np.vstack(list(query_sets.values()))
    print(f"{args.n:,} vectors ({len(real):,} real), {len(headings)} headings; generated in "
          f"{time.perf_counter() - started:.0f} s", flush=True)

    exact = faiss.IndexFlatIP(real.shape[1])
    exact.add(vectors)
    started = time.perf_counter()
    _, truth = exact.search(all_queries, 10)
    print(f"exact ground truth in {time.perf_counter() - started:.1f} s", flush=True)
    del exact

    def recalls(found: np.ndarray) -> dict[str, float]:
        out, offset = {}, 0
        for name, queries in query_sets.items():
            part, true = found[offset:offset + len(queries)], truth[offset:offset + len(queries)]
            out[f"recall@10_{name}"] = round(recall_at(part, true), 4)
            out[f"tied_recall@10_{name}"] = round(tied_recall_at(part, queries, vectors, true), 4)
            offset += len(queries)
        return out

    rows: list[dict] = []

    def report(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:  # after every row: a long run that is stopped still leaves its table
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"n": args.n, "real": len(real), "generator": args.generator, "spread": args.spread,
                                              "rows": rows}, indent=1))

    on_disk = None
    for kind in args.kinds:
        if kind == "milvus-lite":
            for row in milvus_rows(vectors[: args.milvus_n or args.n], all_queries, query_sets, args.work):
                report(row)
            continue
        graphs = [{"hnsw_storage": s, "hnsw_pca_dim": p, "hnsw_reorder": r == "on"}
                  for s in args.hnsw_storage for p in args.hnsw_pca_dim for r in args.hnsw_reorder]
        for graph in graphs if kind == "hnsw" else [{}]:
            on_disk = measure(kind, graph, args, ids, vectors, all_queries, recalls, report, on_disk)


def measure(kind, graph, args, ids, vectors, all_queries, recalls, report, on_disk):
    """Build one FAISS index and time its searches at each search setting; returns the on-disk vectors."""
    from index.faiss_store import FaissIndexConfig, FaissVectorStore

    build_options = dict(graph)  # the HNSW graph's options (reported as given, defaults included)
    if kind == "hnsw" and args.hnsw_m:
        build_options["hnsw_m"] = args.hnsw_m
    if kind == "hnsw" and args.ef_construction:
        build_options["hnsw_ef_construction"] = args.ef_construction
    config = FaissIndexConfig(kind=kind, **build_options)
    started = time.perf_counter()
    store = FaissVectorStore.build(ids, vectors, config=config, kind=kind)
    build = time.perf_counter() - started
    size = file_bytes(store, args.work / f"{kind}.faiss")
    refines = (1, *args.refine) if not store.exact_scores else (1,)
    settings = [None]
    if kind == "hnsw":
        settings = [{"hnsw_ef_search": ef, "refine": r} for ef in args.ef_search for r in refines]
    elif kind == "ivfpq":
        settings = [{"ivf_nprobe": p, "refine": r} for p in args.nprobe for r in refines]
    for overrides in settings:
        store.config = FaissIndexConfig(kind=kind, **build_options, **(overrides or {}))
        refine = store.config.refine if not store.exact_scores else 1
        search = store.search
        if refine > 1:
            if on_disk is None:
                on_disk = np.lib.format.open_memmap(args.work / "vectors.npy", mode="w+", dtype=np.float32,
                                                    shape=vectors.shape)
                on_disk[:] = vectors
                on_disk.flush()
            search = rescoring(store, on_disk, refine)
        found, single, batched = timed_queries(search, all_queries, 10, args.repeats)
        report({"index": kind, **build_options, **(overrides or {}), "vectors": args.n, "build_s": round(build, 1),
                "bytes_per_vector": round(size / args.n, 1), "single_qps": round(single),
                "batched_qps": round(batched), **recalls(found)})
    del store
    return on_disk


def rescoring(store, exact_vectors: np.ndarray, refine: int):
    """The reader's path for compressed indexes: `refine`·k candidates, re-scored with their exact vectors from disk."""

    def search(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        candidates, _ = store.search(queries, k * refine)
        out = np.full((len(queries), k), -1, dtype=np.int64)
        for row, (query, ids) in enumerate(zip(queries, candidates)):
            ids = ids[ids >= 0]
            order = np.argsort(-(exact_vectors[np.sort(ids)] @ query))[:k]
            out[row, : len(order)] = np.sort(ids)[order]
        return out, np.zeros_like(out, dtype=np.float32)

    return search


def milvus_rows(vectors, queries, query_sets, work: Path) -> list[dict]:
    """milvus-lite (AUTOINDEX = HNSW) through the project's MilvusVectorStore."""
    import shutil

    from index.milvus_store import MilvusVectorStore

    path = work / "ann-milvus.db"
    shutil.rmtree(path, ignore_errors=True)
    store = MilvusVectorStore(str(path), "ann", vectors.shape[1])
    started = time.perf_counter()
    ids = np.arange(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), 50_000):
        store.add(ids[start:start + 50_000], vectors[start:start + 50_000])
    store.close()
    store = MilvusVectorStore(str(path), "ann", vectors.shape[1])  # reopened: the index is built on load
    len(store)
    build = time.perf_counter() - started
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    started = time.perf_counter()
    found = np.vstack([store.search(q[None, :], 10)[0] for q in queries])
    single = len(queries) / (time.perf_counter() - started)
    started = time.perf_counter()
    store.search(queries, 10)
    batched = len(queries) / (time.perf_counter() - started)
    row = {"index": "milvus-lite", "vectors": len(vectors), "build_s": round(build, 1),
           "bytes_per_vector": round(size / len(vectors), 1), "single_qps": round(single),
           "batched_qps": round(batched)}
    # Against exact search over the same (possibly capped) set of vectors.
    import faiss

    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, capped_truth = exact.search(queries, 10)
    offset = 0
    for name, part in query_sets.items():
        row[f"recall@10_{name}"] = round(recall_at(found[offset:offset + len(part)], capped_truth[offset:offset + len(part)]), 4)
        offset += len(part)
    store.close()
    return [row]


if __name__ == "__main__":
    main()
