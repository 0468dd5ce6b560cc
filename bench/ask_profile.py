"""Where an answer's time goes: p50 / p90 of every stage of the chain, per mode, over a docqa question set.

The chain runs in this process over an index of the docs (as `rag eval docqa` builds it), warm: every
model is loaded and `--warm` questions are asked first. Each question is then answered by streaming,
as the chat page asks, once per mode. Reported per mode: p50 / p90 of each stage the chain times
(retrieve, rerank, order, evidence, read, total), the time to the first streamed text, and for generative
modes the generator's own pace: tokens per second between its first and last token and the time to
its first token. The HTTP layer is left out (bench/load.py and bench/ask_scale.py time whole requests).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/ask_profile.py ../shared/data/docqa/fastapi_en_questions.json \
        --docs ../shared/data/corpus/fastapi-docs/docs/en/docs --work .rag-eval --modes extractive generative
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from load import percentile  # noqa: E402


WARM_UP = ["How do I install it?", "What does the configuration file hold?", "Can I run it in Docker?",
           "Why is my request rejected?", "How are errors reported?"]


class PacedGenerator:
    """Wraps a `TextGenerator` and notes when each streamed token arrived."""

    def __init__(self, generator) -> None:  # noqa: ANN001
        self.generator = generator
        self.model_name = generator.model_name
        self.calls: list[tuple[float, list[float]]] = []  # (call time, arrival time of each piece)

    def generate(self, messages, **options) -> str:  # noqa: ANN001
        return "".join(self.stream(messages, **options))

    def stream(self, messages, **options) -> Iterator[str]:  # noqa: ANN001
        arrivals: list[float] = []
        self.calls.append((time.perf_counter(), arrivals))
        for piece in self.generator.stream(messages, **options):
            arrivals.append(time.perf_counter())
            yield piece


def profile_mode(chain, questions: list[str], mode: str) -> dict:  # noqa: ANN001
    reader = chain.readers[mode]
    paced = PacedGenerator(reader.generator) if hasattr(reader, "generator") else None
    if paced is not None:
        reader.generator = paced
    stages: dict[str, list[float]] = {}
    first_text, token_rates, first_tokens, abstained = [], [], [], 0
    try:
        for question in questions:
            started = time.perf_counter()
            first = None
            response = None
            calls_before = len(paced.calls) if paced else 0
            for event in chain.stream(question, mode=mode):
                if isinstance(event, str):
                    if event and first is None:
                        first = time.perf_counter()
                else:
                    response = event
            assert response is not None
            abstained += response.abstained
            first_text.append(((first or time.perf_counter()) - started) * 1000)
            for stage, ms in response.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
            for call_started, arrivals in paced.calls[calls_before:] if paced else []:
                if arrivals:
                    first_tokens.append((arrivals[0] - call_started) * 1000)
                if len(arrivals) > 1:
                    token_rates.append((len(arrivals) - 1) / (arrivals[-1] - arrivals[0]))
    finally:
        if paced is not None:
            reader.generator = paced.generator
    row = {"questions": len(questions), "abstained": abstained,
           "first_text_ms": {"p50": round(percentile(first_text, 50), 1), "p90": round(percentile(first_text, 90), 1)},
           "stages_ms": {s: {"p50": round(percentile(v, 50), 1), "p90": round(percentile(v, 90), 1)}
                         for s, v in stages.items()}}
    if token_rates:
        row["generator"] = {"first_token_ms_p50": round(percentile(first_tokens, 50), 1),
                            "first_token_ms_p90": round(percentile(first_tokens, 90), 1),
                            "tokens_per_s_p50": round(percentile(token_rates, 50), 1), "calls": len(first_tokens)}
    return row


def table(results: dict) -> str:
    order = ["retrieve", "rerank", "order", "evidence", "read", "total"]
    lines = ["| mode | " + " | ".join(f"{s} p50 / p90" for s in order) + " | first text p50 / p90 | generator |",
             "|---|" + "---:|" * (len(order) + 2)]
    for mode, row in results.items():
        cells = [f"{row['stages_ms'][s]['p50']:.0f} / {row['stages_ms'][s]['p90']:.0f}" if s in row["stages_ms"] else "-"
                 for s in order]
        generator = row.get("generator")
        pace = (f"first token {generator['first_token_ms_p50']:.0f} / {generator['first_token_ms_p90']:.0f} ms, "
                f"{generator['tokens_per_s_p50']:.1f} tokens/s") if generator else "-"
        lines.append(f"| {mode} | " + " | ".join(cells)
                     + f" | {row['first_text_ms']['p50']:.0f} / {row['first_text_ms']['p90']:.0f} | {pace} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("questions", type=Path, help="A docqa questions file.")
    parser.add_argument("--docs", type=Path, action="append", required=True)
    parser.add_argument("--work", type=Path, default=ROOT / ".rag-eval")
    parser.add_argument("--modes", nargs="+", default=["extractive", "generative"])
    parser.add_argument("--limit", type=int, default=0, help="Only the first N questions.")
    parser.add_argument("--warm", type=int, default=3, help="Generic questions asked first (at most 5).")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rag.evaluation.docqa import docs_chain, load_docqa

    questions = [item.question for item in load_docqa(args.questions)][: args.limit or None]
    results = {}
    with docs_chain(args.docs, args.work) as (chain, _):
        for mode in args.modes:
            for question in WARM_UP[: args.warm]:  # not from the set: caches must not favour counted questions
                chain.run(question, mode=mode)
            results[mode] = profile_mode(chain, questions, mode)
            print(json.dumps({mode: results[mode]}), flush=True)
    print(table(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
