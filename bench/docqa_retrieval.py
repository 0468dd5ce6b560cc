"""Where the answer sits before any reader runs: the question's page and its answer strings in the passages.

For every answerable question of a docqa file, over an index of its docs (as `rag eval docqa` builds it),
this reports the share of questions whose page is first / in the top 3 / in the top 5, and whose answer
string appears in the first / top 3 / top 5 passages, for the retriever's order and for the chain's order
(reranked, as the reader sees it). Reader-free, so settings that change retrieval or chunking are compared
in minutes.

    .venv/bin/python bench/docqa_retrieval.py ../shared/data/docqa/fastapi_en_questions.json \
        --docs ../shared/data/corpus/fastapi-docs/docs/en/docs --work .rag-eval
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEPTHS = (1, 3, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--docs", type=Path, action="append", required=True)
    parser.add_argument("--work", type=Path, default=Path(".rag-eval"))
    parser.add_argument("--out", type=Path, default=None, help="write per-question ranks (JSONL)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    rows = collect(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    summary = summarise(rows)
    print(json.dumps(summary, indent=2) if args.json else table(summary))


def _first_hit(flags: list[bool]) -> int | None:
    return next((rank for rank, hit in enumerate(flags, 1) if hit), None)


def collect(args) -> list[dict]:  # noqa: ANN001
    from rag.chain import AbstentionThresholds
    from rag.evaluation.docqa import answer_contains, docs_chain, load_docqa, same_page

    depth = max(DEPTHS)
    rows = []
    with docs_chain(args.docs, args.work) as (chain, _):
        # Thresholds nothing reaches: the chain stops at the gate, returning its reranked passages.
        chain.thresholds = AbstentionThresholds({"*": float("inf")}, heading=None)
        for item in load_docqa(args.questions):
            if not item.answerable:
                continue
            retrieved = chain.retriever.run(item.question, top_k=depth).passages
            reranked = chain.trace(item.question, top_k=depth).passages
            row = {"id": item.id, "type": item.type}
            for name, passages in (("retrieval", retrieved), ("chain", reranked)):
                row[f"{name}_page"] = _first_hit([same_page(p.source, item.source) for p in passages])
                row[f"{name}_answer"] = _first_hit([bool(answer_contains(p.text, item.answers)) for p in passages])
            rows.append(row)
    return rows


def summarise(rows: list[dict]) -> dict:
    summary: dict = {"questions": len(rows)}
    for name in ("retrieval", "chain"):
        for what in ("page", "answer"):
            ranks = [r[f"{name}_{what}"] for r in rows]
            for depth in DEPTHS:
                hits = sum(rank is not None and rank <= depth for rank in ranks)
                summary[f"{name}_{what}@{depth}"] = round(hits / max(len(rows), 1), 4)
    return summary


def table(summary: dict) -> str:
    lines = [f"{summary['questions']} answerable questions; share with the page / an answer string in the top k",
             "order      what    " + "  ".join(f"@{d:<4}" for d in DEPTHS)]
    for name in ("retrieval", "chain"):
        for what in ("page", "answer"):
            lines.append(f"{name:<10} {what:<7} " + "  ".join(f"{summary[f'{name}_{what}@{d}']:.3f}" for d in DEPTHS))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
