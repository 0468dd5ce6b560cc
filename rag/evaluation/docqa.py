"""`rag eval docqa`: real documentation questions (how-to, yes/no, explain, compare, unanswerable) through the chain.

A docqa file is a JSON list of questions, each with the page that answers it
(`source`, relative to the corpus root; null when the docs do not answer),
short `answers` that a right answer usually contains, and `key_facts` a grader
looks for. Scores:

- *contains*: an answer string appears in the answer (case and runs of
  whitespace ignored), answerable questions only;
- *key_facts*: the share of key facts found, a fact counting as found when it
  appears whole or when two thirds of its content words are in the answer;
- *citation_hit* / *citation_top1*: a cited source (any / the first) is the
  question's page, paths compared by their trailing components;
- *abstain_unanswerable*: "not found" on unanswerable questions;
  *false_abstain_rate*: "not found" on answerable ones;
- latency: the whole answer (p50 / p90) and the first answer token, timed on
  the chain's stream, as a chat client sees it.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from common.language import CJK_CHARS
from rag.evaluation.metrics import percentile
from rag.evaluation.report import EvalTable, read_json

if TYPE_CHECKING:
    from rag.chain import AskChain

ProgressCallback = Callable[[int, int], None]
QUESTION_TYPES = ("factoid", "howto", "yesno", "explain", "compare", "unanswerable")
DOCQA_METRICS = ["contains", "key_facts", "citation_hit", "citation_top1", "abstain_unanswerable",
                 "false_abstain_rate"]

_WORD = re.compile(rf"[{CJK_CHARS}]|[^\W_]+", re.UNICODE)
_STOP = frozenset("a an and are as at be by can for from how in is it of on or the to with you your".split())


@dataclass(frozen=True)
class DocQAItem:
    id: str
    question: str
    source: str | None
    answers: list[str]
    key_facts: list[str]
    type: str

    @property
    def answerable(self) -> bool:
        return self.source is not None


@dataclass
class DocQARecord:
    id: str
    type: str
    question: str
    answer: str
    abstained: bool
    contains: float | None  # None on unanswerable questions
    key_facts: float | None
    citation_hit: float | None
    citation_top1: float | None
    cited_sources: list[str]
    first_token_ms: float
    total_ms: float
    answer_words: int
    timings_ms: dict[str, float] = field(default_factory=dict)


def load_docqa(path: Path) -> list[DocQAItem]:
    """The questions of a docqa file; raises ValueError naming what is wrong."""
    data = read_json(path, "docqa file", list, "a JSON list of questions")
    items = []
    for number, entry in enumerate(data, start=1):
        if not isinstance(entry, dict) or not str(entry.get("question", "")).strip():
            raise ValueError(f"{path}: entry {number} has no question")
        items.append(DocQAItem(str(entry.get("id", number)), entry["question"], entry.get("source"),
                               list(entry.get("answers") or []), list(entry.get("key_facts") or []),
                               str(entry.get("type") or ("unanswerable" if entry.get("source") is None else "factoid"))))
    return items


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def answer_contains(answer: str, answers: list[str]) -> float:
    text = _normal(answer)
    return float(any(_normal(a) in text for a in answers if a.strip()))


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def key_facts_found(answer: str, facts: list[str]) -> float:
    """Share of facts found whole, or by two thirds of their content words."""
    if not facts:
        return 0.0
    text = _normal(answer)
    words = set(_content_words(answer))
    found = 0
    for fact in facts:
        terms = _content_words(fact)
        if _normal(fact) in text or (terms and sum(t in words for t in terms) >= 2 / 3 * len(terms)):
            found += 1
    return found / len(facts)


def same_page(cited: str, source: str) -> bool:
    """Whether a cited path is the question's page: `source`'s components end the cited path."""
    cited_parts = Path(cited).as_posix().strip("/").split("/")
    source_parts = Path(source).as_posix().strip("/").split("/")
    return cited_parts[-len(source_parts):] == source_parts


def evaluate(items: list[DocQAItem], chain, *, mode: str | None = None, top_k: int | None = None,
             on_progress: ProgressCallback | None = None) -> list[DocQARecord]:
    """Every question through the chain's stream (first token and whole answer timed)."""
    from rag.chain import AskResponse

    records = []
    for done, item in enumerate(items, start=1):
        started = time.perf_counter()
        first: float | None = None
        response: AskResponse | None = None
        for event in chain.stream(item.question, mode=mode, top_k=top_k):
            if isinstance(event, AskResponse):
                response = event
            elif event and first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        assert response is not None, "a chain stream always ends with its response"
        records.append(score(item, response, first_token_ms=round(((first or end) - started) * 1000, 1),
                             total_ms=round((end - started) * 1000, 1)))
        if on_progress:
            on_progress(done, len(items))
    return records


def score(item: DocQAItem, response, *, first_token_ms: float, total_ms: float) -> DocQARecord:
    cited = [c.source for c in response.citations] if not response.abstained else []
    answer = "" if response.abstained else response.answer
    answerable = item.answerable
    return DocQARecord(
        id=item.id, type=item.type, question=item.question, answer=response.answer, abstained=response.abstained,
        contains=answer_contains(answer, item.answers) if answerable else None,
        key_facts=key_facts_found(answer, item.key_facts) if answerable else None,
        citation_hit=float(any(same_page(c, item.source) for c in cited)) if answerable else None,
        citation_top1=float(bool(cited) and same_page(cited[0], item.source)) if answerable else None,
        cited_sources=cited, first_token_ms=first_token_ms, total_ms=total_ms,
        answer_words=len(answer.split()) if answer else 0, timings_ms=dict(response.timings_ms),
    )


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _scores(records: list[DocQARecord]) -> dict[str, float | None]:
    answerable = [r for r in records if r.contains is not None]
    unanswerable = [r for r in records if r.contains is None]
    return {
        "contains": _mean([r.contains for r in answerable]),
        "key_facts": _mean([r.key_facts for r in answerable]),
        "citation_hit": _mean([r.citation_hit for r in answerable]),
        "citation_top1": _mean([r.citation_top1 for r in answerable]),
        "abstain_unanswerable": _mean([float(r.abstained) for r in unanswerable]),
        "false_abstain_rate": _mean([float(r.abstained) for r in answerable]),
    }


def summarise(records: list[DocQARecord], *, file: str, mode: str, notes: list[str],
              fingerprint: str | None) -> dict:
    """The report: overall scores, per-type scores, latency, answer length."""
    totals = [r.total_ms for r in records]
    firsts = [r.first_token_ms for r in records]
    lengths = sorted(r.answer_words for r in records if not r.abstained)
    by_type: dict[str, list[DocQARecord]] = defaultdict(list)
    for record in records:
        by_type[record.type].append(record)
    stages = sorted({s for r in records for s in r.timings_ms})
    return {
        "file": file, "mode": mode, "questions": len(records),
        "answerable": sum(r.contains is not None for r in records),
        **_scores(records),
        "per_type": {t: {"questions": len(rs), **_scores(rs)} for t, rs in sorted(by_type.items())},
        "latency_ms_p50": round(percentile(totals, 50), 1), "latency_ms_p90": round(percentile(totals, 90), 1),
        "first_token_ms_p50": round(percentile(firsts, 50), 1),
        "first_token_ms_p90": round(percentile(firsts, 90), 1),
        "stage_ms_p50": {s: round(percentile([r.timings_ms.get(s, 0.0) for r in records], 50), 1) for s in stages},
        "median_answer_words": lengths[len(lengths) // 2] if lengths else 0,
        "notes": notes, "fingerprint": fingerprint,
    }


def eval_table(summary: dict, records: list[DocQARecord]) -> EvalTable:
    """Overall and per-type rows, and the latency samples (whole answer, first token)."""
    table = EvalTable(f"{Path(summary['file']).name} ({summary['mode']})", list(DOCQA_METRICS),
                      notes=list(summary["notes"]))
    table.rows["all"] = {m: summary[m] for m in DOCQA_METRICS}
    for name, values in summary["per_type"].items():
        table.rows[name] = {m: values[m] for m in DOCQA_METRICS}
    table.latency_ms["total"] = [r.total_ms for r in records]
    table.latency_ms["first token"] = [r.first_token_ms for r in records]
    return table


@dataclass
class DocQARun:
    """What `run_docqa` measured: the summary (`summary`), the per-question records and the table."""

    summary: dict
    records: list[DocQARecord]
    table: EvalTable


def run_docqa(questions: Path, docs: list[Path], *, work: Path, settings=None, mode: str | None = None,  # noqa: ANN001
              top_k: int | None = None, limit: int = 0, types: list[str] | None = None,
              on_progress: ProgressCallback | None = None) -> DocQARun:
    """Ingest `docs` into an index under `work` (incremental: a rerun embeds nothing new), then ask every
    question of the docqa file (the first `limit`, of the given `types`) through the chain."""
    items = load_docqa(questions)
    if types:
        items = [i for i in items if i.type in types]
    if limit:
        items = items[:limit]
    if not items:
        raise ValueError(f"{questions} holds no questions to ask (after --type / --limit)")
    with docs_chain(docs, work, settings) as (chain, fingerprint):
        used_mode = mode or chain.default_mode
        chain.run(items[0].question, mode=used_mode)  # warm: models load and caches fill before timing
        records = evaluate(items, chain, mode=used_mode, top_k=top_k, on_progress=on_progress)
        summary = summarise(records, file=str(questions), mode=used_mode, notes=chain.notes, fingerprint=fingerprint)
    return DocQARun(summary, records, eval_table(summary, records))


def docs_index_folder(docs: list[Path], work: Path) -> Path:
    """Where `docs_chain` keeps the index of `docs`: one folder under `work` per set of docs."""
    import hashlib

    key = hashlib.sha256("\n".join(str(d.resolve()) for d in docs).encode()).hexdigest()[:12]
    return work / f"docqa-{key}"


@contextmanager
def docs_chain(docs: list[Path], work: Path, settings=None) -> Iterator[tuple[AskChain, str | None]]:  # noqa: ANN001
    """The chain (and its index's fingerprint) over an index of `docs` kept under `work`, one folder per set of
    docs: ingested on first use, brought up to date incrementally after."""
    from rag.components import build_chain, build_ingest_pipeline, build_store
    from rag.settings import Settings

    settings = settings or Settings()
    store = build_store(settings, docs_index_folder(docs, work))
    pipeline = build_ingest_pipeline(settings, store)
    pipeline.run(docs)
    with store.reader() as index:
        yield build_chain(settings, index, pipeline.embedder), index.fingerprint
