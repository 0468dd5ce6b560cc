"""The evidence gate on documentation questions: which signals tell answerable from unanswerable.

For every question of a docqa file, over an index of its docs (as `rag eval docqa` builds it), this
records the signals the chain has before any reader runs: the best supporting sentence's score (the
current gate), the best *heading* of the passages (FAQ-style docs put the question in a heading), and
the reranker's best score. It prints, per signal and for the rule "sentence OR heading", the abstention
on unanswerable questions against the false abstentions on answerable ones over a grid of thresholds.

    .venv/bin/python bench/docqa_gate.py ../shared/data/docqa/fastapi_en_questions.json \
        --docs ../shared/data/corpus/fastapi-docs/docs/en/docs --work .rag-eval --out bench/out/gate-en.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--docs", type=Path, action="append", required=True)
    parser.add_argument("--work", type=Path, default=Path(".rag-eval"))
    parser.add_argument("--out", type=Path, default=None, help="write per-question signals (JSONL)")
    parser.add_argument("--from-signals", type=Path, default=None, help="read signals written by --out instead")
    args = parser.parse_args()

    if args.from_signals:
        rows = [json.loads(line) for line in args.from_signals.read_text().splitlines()]
    else:
        rows = collect(args)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report(rows)


def collect(args) -> list[dict]:  # noqa: ANN001
    from rag.chain import gate_signals
    from rag.evaluation.docqa import docs_chain, load_docqa

    rows = []
    with docs_chain(args.docs, args.work) as (chain, _):
        for item in load_docqa(args.questions):
            signals = gate_signals(chain, item.question)
            rows.append({"id": item.id, "type": item.type, "answerable": item.answerable, **signals})
    return rows


def _rates(rows: list[dict], passes) -> tuple[float, float]:  # noqa: ANN001
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    abstain = sum(not passes(r) for r in unanswerable) / max(len(unanswerable), 1)
    false = sum(not passes(r) for r in answerable) / max(len(answerable), 1)
    return abstain, false


def report(rows: list[dict]) -> None:
    print(f"{len(rows)} questions, {sum(not r['answerable'] for r in rows)} unanswerable")
    for signal in ("sentence", "heading", "rerank"):
        values = sorted({round(r[signal], 3) for r in rows if r[signal] is not None})
        print(f"\n{signal}: threshold → abstain on unanswerable / false abstain")
        for threshold in values[:: max(len(values) // 25, 1)]:
            abstain, false = _rates(rows, lambda r: r[signal] is not None and r[signal] >= threshold)
            print(f"  {threshold:.3f}  {abstain:.3f}  {false:.3f}")
    print("\nsentence ≥ s OR heading ≥ h: best rules with false abstain ≤ 0.08")
    best = []
    for s in [x / 100 for x in range(40, 90, 2)]:
        for h in [x / 100 for x in range(50, 130, 2)]:
            abstain, false = _rates(rows, lambda r: r["sentence"] >= s or (r["heading"] or 0) >= h)
            if false <= 0.08:
                best.append((abstain, -false, s, h))
    for abstain, negative_false, s, h in sorted(best, reverse=True)[:10]:
        print(f"  s={s:.2f} h={h:.2f}  abstain {abstain:.3f}  false {-negative_false:.3f}")


if __name__ == "__main__":
    main()
