"""A whole extractive `POST /ask` against LangChain's hybrid retrieval + the same reranker alone, same questions.

The peer is what a LangChain user builds for the same job: `FAISS.from_documents` over `HuggingFaceEmbeddings`
and a `BM25Retriever` fused by an `EnsembleRetriever` (reciprocal rank, equal weights), the fused candidates cut
to our rerank depth (`RAG_RERANK__DEPTH`, 20) and rescored by `CrossEncoderReranker` over a
`HuggingFaceCrossEncoder`, keeping `top_k` (5). Both sides index the same chunks (the ones this project's
ingest made of the docs, each with its heading path, as our retriever and reranker read them), embed with the
same model folder and rerank with the same cross-encoder folder (the ones the service resolves to). The peer
stops there: it has no reader, no evidence gate and no citations, so the comparison is our whole answer
(retrieval, rerank, evidence gate, extractive reader, citations, over HTTP from a `rag serve` on loopback)
against its retrieval and rerank only.

Questions alternate between the two, one at a time, after `--warm` questions each; per side: p50 / p90 ms
and the share of questions whose page is among the passages returned (ours: the citations' pages; the
peer's: its top `top_k`), then the ratio of the p50s (ours / peer's; target ≤ 1.5).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/peer_ask.py ../shared/data/docqa/fastapi_en_questions.json \
        --docs ../shared/data/corpus/fastapi-docs/docs/en/docs --work .rag-eval
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from load import free_port, percentile, start_server  # noqa: E402


def indexed_chunks(store_folder: Path) -> list:
    """Every chunk of the index, in storage order."""
    from index.store import IndexStore

    with IndexStore(store_folder).reader() as reader:
        ids, _ = reader.store.all_chunk_vectors(reader.vectors.dimension)
        chunks = reader.chunks(ids.tolist())
    return [chunks[i] for i in ids.tolist()]


def build_peer(chunks: list, embedder_folder: Path, reranker_folder: Path, depth: int, top_k: int):  # noqa: ANN201
    """LangChain's hybrid retrieval + cross-encoder rerank, as a function question → top documents."""
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings

    from ingest.chunking import indexed_text

    documents = [Document(page_content=indexed_text(c.text, c.heading), metadata={"source": c.source}) for c in chunks]
    dense = FAISS.from_documents(documents, HuggingFaceEmbeddings(model_name=str(embedder_folder)))
    keyword = BM25Retriever.from_documents(documents, k=depth)
    ensemble = EnsembleRetriever(retrievers=[dense.as_retriever(search_kwargs={"k": depth}), keyword],
                                 weights=[0.5, 0.5])
    reranker = CrossEncoderReranker(model=HuggingFaceCrossEncoder(model_name=str(reranker_folder)), top_n=top_k)

    def ask(question: str) -> list:
        candidates = ensemble.invoke(question)[:depth]
        return list(reranker.compress_documents(candidates, question))

    return ask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("questions", type=Path, help="A docqa questions file.")
    parser.add_argument("--docs", type=Path, action="append", required=True)
    parser.add_argument("--work", type=Path, default=ROOT / ".rag-eval")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--warm", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rag.components import build_embedder, build_reranker
    from rag.evaluation.docqa import docs_chain, docs_index_folder, load_docqa, same_page
    from rag.settings import Settings

    settings = Settings()
    items = [item for item in load_docqa(args.questions)][: args.limit or None]
    with docs_chain(args.docs, args.work, settings):  # builds or updates the index
        pass
    store_folder = docs_index_folder(args.docs, args.work)
    reranker, note = build_reranker(settings)
    if reranker is None:
        raise SystemExit(f"no reranker: {note}")
    peer = build_peer(indexed_chunks(store_folder), build_embedder(settings).resolved.path, reranker.resolved.path,
                      settings.rerank.depth, settings.retrieval.top_k)

    with tempfile.TemporaryDirectory() as serving:
        (Path(serving) / "index").symlink_to(store_folder.resolve())
        port = free_port()
        server = start_server(Path(serving), port)
        try:
            url = f"http://127.0.0.1:{port}/ask"
            times: dict[str, list[float]] = {"ours": [], "peer": []}
            found: dict[str, list[bool]] = {"ours": [], "peer": []}
            with httpx.Client(timeout=300) as client:
                for item in items[: args.warm]:
                    client.post(url, json={"question": item.question, "mode": "extractive"}).raise_for_status()
                    peer(item.question)
                for n, item in enumerate(items):
                    for side in ("ours", "peer") if n % 2 == 0 else ("peer", "ours"):
                        started = time.perf_counter()
                        if side == "ours":
                            response = client.post(url, json={"question": item.question, "mode": "extractive"})
                            response.raise_for_status()
                            sources = [c["source"] for c in response.json()["citations"]]
                        else:
                            sources = [doc.metadata["source"] for doc in peer(item.question)]
                        times[side].append((time.perf_counter() - started) * 1000)
                        if item.answerable:
                            found[side].append(any(same_page(s, item.source) for s in sources))
        finally:
            server.terminate()
            server.wait(timeout=60)
    summary = {side: {"p50_ms": round(percentile(t, 50), 1), "p90_ms": round(percentile(t, 90), 1),
                      "page_found": round(sum(found[side]) / len(found[side]), 3)} for side, t in times.items()}
    summary["p50_ratio_ours_over_peer"] = round(summary["ours"]["p50_ms"] / summary["peer"]["p50_ms"], 2)
    summary["questions"] = len(items)
    print(json.dumps(summary, indent=1))
    print("| system | what is timed | p50 ms | p90 ms | page found |\n|---|---|---:|---:|---:|")
    print(f"| this project | whole extractive `/ask` over HTTP | {summary['ours']['p50_ms']} | {summary['ours']['p90_ms']} "
          f"| {summary['ours']['page_found']} (cited) |")
    print(f"| LangChain | hybrid retrieval + rerank | {summary['peer']['p50_ms']} | {summary['peer']['p90_ms']} "
          f"| {summary['peer']['page_found']} (top {settings.retrieval.top_k}) |")
    print(f"ours / peer p50: {summary['p50_ratio_ours_over_peer']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
