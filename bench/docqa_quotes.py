"""Which of the documents' sentences should close a generated answer? Replays the chain's quote selection over the
generated text that a `rag eval docqa` run recorded (its .jsonl), so that quote rules can be compared without
generating again (the quotes are chosen after the last token: the replay gives the live containment exactly).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/docqa_quotes.py ../shared/data/docqa/fastapi_en_questions.json \\
        --docs ../shared/data/corpus/fastapi-docs/docs/en/docs --work /tmp/gate2 \\
        --run OUT/docqa-fastapi_en_questions-generative.jsonl [--alternatives]

Rows: the chain as it is, then with one rule taken out or changed (yes/no negation ranking off, spare quotes
0/1/4). `--alternatives` adds two sentence pickers that were tried instead: the reranker scoring every sentence
of the top three passages, and the generator copying one sentence of its prompt (a llama.cpp grammar holds it to
those sentences; one more generation per question).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import Counter
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before bench/ itself, whose ingest.py would shadow the package

import rag.chain as chain_module  # noqa: E402
from generators.text.generative_reader import trim_passages  # noqa: E402
from generators.text.sentence_reader import split_sentences  # noqa: E402
from rag.chain import AskChain, _Prepared  # noqa: E402
from rag.evaluation.docqa import docs_chain  # noqa: E402

NEVER = re.compile(r"(?!)")  # matches nothing: the negation ranking off
MARKER = re.compile(r"\[\d+\]")


def normal(text: str) -> str:
    return " ".join(text.lower().split())


def holds(texts: list[str], gold: list[str]) -> bool:
    return any(normal(g) in normal(t) for g in gold for t in texts)


def replayed(chain: AskChain, prepared: _Prepared, answer: str, *, negation: re.Pattern[str], spares: int) -> str:
    """The recorded answer's own text followed by the quotes the chain picks under these rules."""
    own = answer.split("\n\n> ")[0]
    saved = chain_module._NEGATION, chain_module.QUOTE_SPARES
    chain_module._NEGATION, chain_module.QUOTE_SPARES = negation, spares
    try:
        quotes, _ = chain._quotes(prepared, "" if own.startswith("The documents say") else own, [])
    finally:
        chain_module._NEGATION, chain_module.QUOTE_SPARES = saved
    return f"{own}\n\n{quotes}"


def sentences_of_top_passages(prepared: _Prepared, count: int = 3) -> list[str]:
    found: list[str] = []
    for passage in prepared.reader_passages[:count]:
        for start, end in split_sentences(passage.text):
            text = " ".join(passage.text[start:end].split())
            if len(text) >= 12 and text not in found:
                found.append(text)
    return found


def generator_pick(prepared: _Prepared) -> str:
    """The one sentence of its prompt that the generator copies when asked for the one that answers."""
    reader = prepared.reader
    prompt = reader.build_prompt(prepared.question, prepared.reader_passages)
    _, rendered = trim_passages(prepared.question, prepared.reader_passages, reader.max_context_chars)
    candidates = list(dict.fromkeys(" ".join(text[a:b].split()) for text in rendered for a, b in split_sentences(text)))
    candidates = [c for c in candidates if len(c) >= 12 and "…" not in c]
    if not candidates:
        return ""
    literal = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'  # noqa: E731
    messages = [dict(m) for m in prompt.messages]
    messages[-1]["content"] = (messages[-1]["content"].rsplit("\n\n", 1)[0]
                               + "\n\nCopy, word for word, the one sentence of the passages that best answers the question.")
    request = {"messages": messages, "max_tokens": 200, "temperature": 0.0, "cache_prompt": True,
               "grammar": "root ::= " + " | ".join(literal(c) for c in candidates)}
    return reader.generator.server.handle_chat_completions(request)["choices"][0]["message"]["content"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--docs", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True, help="the .jsonl of a `rag eval docqa --mode generative` run")
    parser.add_argument("--alternatives", action="store_true", help="also the reranker and the generator as pickers")
    args = parser.parse_args()

    questions = [q for q in json.loads(args.questions.read_text(encoding="utf-8")) if q["answers"]]
    run = {row["id"]: row for row in map(json.loads, args.run.read_text(encoding="utf-8").splitlines())}
    negation = chain_module._NEGATION
    variants: dict[str, Callable[[AskChain, _Prepared, str], str]] = {
        "the chain as it is": lambda c, p, a: replayed(c, p, a, negation=negation, spares=chain_module.QUOTE_SPARES),
        "no yes/no negation ranking": lambda c, p, a: replayed(c, p, a, negation=NEVER, spares=chain_module.QUOTE_SPARES),
        **{f"spare quotes {n}": (lambda n: lambda c, p, a: replayed(c, p, a, negation=negation, spares=n))(n)
           for n in (0, 1, 4)},
    }
    hits: dict[str, int] = dict.fromkeys(variants, 0)
    words: dict[str, list[int]] = {name: [] for name in variants}
    extra: Counter[str] = Counter()  # in the order first counted
    pick_seconds: list[float] = []
    with docs_chain([args.docs], args.work) as (chain, _):
        for question in questions:
            row = run[question["id"]]
            if row["abstained"]:
                continue
            prepared = chain._prepare(question["question"], "generative", None, None, None)
            if not isinstance(prepared, _Prepared):
                continue
            gold = question["answers"]
            texts = {name: variant(chain, prepared, row["answer"]) for name, variant in variants.items()}
            for name, text in texts.items():
                hits[name] += holds([text], gold)
                words[name].append(len(text.split()))
            if not args.alternatives:
                continue
            own = MARKER.sub(" ", row["answer"].split("\n\n> ")[0])  # the model's text, without its [n]
            sentences = sentences_of_top_passages(prepared)
            scores = chain.reranker.run(question["question"], sentences).scores if sentences else []
            by_reranker = [sentences[i] for i in sorted(range(len(sentences)), key=lambda i: -scores[i])]
            gold_rank = next((i for i, s in enumerate(by_reranker) if holds([s], gold)), None)
            extra["top three passages hold a gold string"] += holds([p.text for p in prepared.reader_passages[:3]], gold)
            extra["reranker: gold sentence first"] += gold_rank == 0
            extra["reranker: model text + best 2 sentences"] += holds([own, *by_reranker[:2]], gold)
            started = time.perf_counter()
            pick = generator_pick(prepared)
            pick_seconds.append(time.perf_counter() - started)
            extra["generator's pick alone"] += holds([pick], gold)
            quoted = texts["the chain as it is"]
            extra["generator's pick + the chain's answer"] += holds([quoted, pick], gold)
            blocks = quoted.split("\n\n> ")
            without_last = "\n\n> ".join(blocks[:-1]) if len(blocks) > 1 else quoted
            extra["generator's pick in place of the last quote"] += holds([without_last, pick], gold)
    total = len(questions)
    print(f"{total} answerable questions; a question the run abstained on, or the gate stops, counts as a miss\n")
    print("| quotes | contains | median words |\n|---|---:|---:|")
    for name in variants:
        print(f"| {name} | {hits[name] / total:.3f} ({hits[name]}) | {statistics.median(words[name]) if words[name] else 0:.0f} |")
    if extra:
        print("\n| alternative picker | questions |\n|---|---:|")
        for name, count in extra.items():
            print(f"| {name} | {count} |")
        print(f"\ngenerator pick: {statistics.mean(pick_seconds):.2f} s mean per question")


if __name__ == "__main__":
    main()
