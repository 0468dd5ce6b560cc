"""`rag eval docqa` with the generator's replies recorded once and replayed after: tune what happens to a generated
answer (the support gate, quotes, abstention) over the whole dev set in a minute instead of ten.

The first run generates every answer with the configured model and stores the raw replies in `--cache`, keyed by
the exact prompt; later runs with the same retrieval, rerank and prompt settings replay them (a changed prompt
misses the cache and generates). Settings come from the environment as usual (`RAG_GENERATOR__MIN_SUPPORT=0.6 ...`);
`--set reader.echo_weight=0.5` changes an attribute of the reader (or `chain.`) that no setting names.
Latency figures of a replayed run measure everything but generation: take time figures from `rag eval docqa`.

    .venv/bin/python bench/docqa_replay.py ../shared/data/docqa/fastapi_en_questions.json \
        --docs ../shared/data/corpus/fastapi-docs/docs/en/docs --work .rag-eval \
        --cache bench/out/replies-en.json --out bench/out/replay-en
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class RecordedGenerator:
    """A `TextGenerator` that answers from recorded replies, asking the wrapped generator on a miss."""

    def __init__(self, generator, cache: Path) -> None:  # noqa: ANN001
        self.generator = generator
        self.model_name = generator.model_name
        self.cache = cache
        self.replies: dict[str, str] = json.loads(cache.read_text()) if cache.exists() else {}
        self.misses = 0

    def _key(self, messages: Sequence[dict], max_new_tokens: int, temperature: float) -> str:
        raw = json.dumps([self.model_name, list(messages), max_new_tokens, temperature], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()

    def _reply(self, messages: Sequence[dict], max_new_tokens: int, temperature: float) -> str:
        key = self._key(messages, max_new_tokens, temperature)
        if key not in self.replies:
            self.misses += 1
            self.replies[key] = self.generator.generate(messages, max_new_tokens=max_new_tokens, temperature=temperature)
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            self.cache.write_text(json.dumps(self.replies, ensure_ascii=False))
        return self.replies[key]

    def generate(self, messages, *, max_new_tokens: int = 256, temperature: float = 0.0, stop=None) -> str:  # noqa: ANN001
        return self._reply(messages, max_new_tokens, temperature)

    def stream(self, messages, *, max_new_tokens: int = 256, temperature: float = 0.0,  # noqa: ANN001
               stop=None) -> Iterator[str]:  # noqa: ANN001
        # Word-sized pieces, as a model streams them: the support gate sees the same segment boundaries.
        yield from re.findall(r"\s*\S+", self._reply(messages, max_new_tokens, temperature)) or [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--docs", type=Path, action="append", required=True)
    parser.add_argument("--work", type=Path, default=Path(".rag-eval"))
    parser.add_argument("--cache", type=Path, required=True, help="recorded replies (JSON), read and extended")
    parser.add_argument("--mode", default="generative")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--type", action="append", default=[], help="only questions of this type (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the summary and per-question records")
    parser.add_argument("--set", action="append", default=[], metavar="reader.NAME=VALUE",
                        help="set an attribute of the mode's reader (reader.) or of the chain (chain.), JSON value")
    args = parser.parse_args()

    from dataclasses import asdict

    from rag.evaluation.docqa import docs_chain, evaluate, load_docqa, summarise

    items = [item for item in load_docqa(args.questions) if not args.type or item.type in args.type][: args.limit or None]
    with docs_chain(args.docs, args.work) as (chain, fingerprint):
        reader = chain.readers[args.mode]
        recorded = RecordedGenerator(reader.generator, args.cache)
        reader.generator = recorded
        for assignment in args.set:
            name, _, value = assignment.partition("=")
            owner, _, attribute = name.partition(".")
            target = {"reader": reader, "chain": chain}[owner]
            if not hasattr(target, attribute):
                parser.error(f"{owner} has no attribute {attribute!r}")
            setattr(target, attribute, json.loads(value))
        records = evaluate(items, chain, mode=args.mode)
        summary = summarise(records, file=str(args.questions), mode=args.mode, notes=chain.notes,
                            fingerprint=fingerprint)
    summary["generated"] = recorded.misses
    summary.pop("per_type")
    print(json.dumps(summary, ensure_ascii=False))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
        (args.out / "records.jsonl").write_text(
            "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records))


if __name__ == "__main__":
    main()
