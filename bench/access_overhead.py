"""What access control costs a search: the same queries as a key that reads everything, and as a key of one group
that may not read half the documents (its first search builds the BM25 index of the readable documents, once per
index snapshot; later ones reuse it).

    python bench/access_overhead.py INDEX_DIR [--queries 50]

Works on a copy of INDEX_DIR (half of its documents are given to the group "other"); prints the median search
latency of each caller and the one-time cost of the group's BM25 index, with the machine's core count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index", type=Path)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rag.api.actions import Caller
    from rag.components import build_embedder, build_retriever, build_store
    from rag.retriever import MetadataFilter
    from rag.settings import Settings

    work = Path(tempfile.mkdtemp()) / "index"
    shutil.copytree(args.index, work, ignore=shutil.ignore_patterns("write.lock"))
    settings = Settings().updated({"index.dir": work})
    store = build_store(settings)
    with store.reader() as reader:
        doc_ids = sorted(reader.store.sources().values())
        texts = [c.text for c in reader.chunks(list(range(1, 4 * args.queries))).values()]
    with store.writer() as writer:
        for doc_id in doc_ids[::2]:
            writer.set_groups(doc_id, ["other"])
        writer.commit()
    queries = [" ".join(text.split()[:8]) for text in texts][: args.queries]
    embedder = build_embedder(settings)
    everyone, member = Caller(None, None), Caller("k", None, frozenset({"mine"}))
    with store.reader() as reader:
        retriever = build_retriever(settings, reader, embedder)
        for query in queries:
            embedder.embed_query(query)  # query vectors cached: both callers pay the same embedding (none)

        def timed(caller: Caller) -> list[float]:
            times = []
            for query in queries:
                started = time.perf_counter()
                retriever.run(query, filters=MetadataFilter(hidden=caller.hidden(reader)))
                times.append((time.perf_counter() - started) * 1000)
            return times

        timed(everyone)  # warm
        started = time.perf_counter()
        reader.search_bm25("warm up", 1, hidden=member.hidden(reader))
        build_ms = (time.perf_counter() - started) * 1000
        full, restricted = timed(everyone), timed(member)
    print(f"{len(doc_ids)} documents ({len(doc_ids[::2])} hidden from the group key), {len(queries)} queries, "
          f"{os.cpu_count()} cores")
    print(f"search p50: reads everything {statistics.median(full):.1f} ms, group key {statistics.median(restricted):.1f} "
          f"ms (ratio {statistics.median(restricted) / statistics.median(full):.2f}); the group's BM25 index, once per "
          f"snapshot: {build_ms:.0f} ms")


if __name__ == "__main__":
    main()
