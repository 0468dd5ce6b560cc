"""The ask chain: retrieve → rerank → gate on evidence → read, returning a cited answer or an abstention.

Abstention happens before any reader or generator runs: the best supporting
sentence of the retrieved passages (scored by the sentence extractor) must
reach a threshold calibrated on data (`bench/calibrate_abstention.py`), per
query language. Readers may abstain too (an empty answer, or a span below its
own threshold).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, Field

from generators.text.reading import Reader, ReaderPassage, ReaderResult, ReaderSpan
from generators.text.reranker import CrossEncoderReranker, fused_order
from generators.text.question_kinds import question_kind
from generators.text.sentence_reader import SentenceReader, code_block_after, sentence_of
from generators.text.text_generators import Message
from common.fusion import RRF_K, reciprocal_rank_fusion
from common.language import CJK_CHAR, CJK_CHARS, query_language, reply_language
from rag.retriever import HybridRetriever, MetadataFilter, RetrievedPassage

log = logging.getLogger(__name__)

NOT_FOUND = "Not found in the documents."
# What opens an answer made of the documents' quoted sentences alone, per question language.
QUOTED_ANSWER_LEAD = {"zh": "文档原文：", "*": "The documents say:"}
MAX_QUESTION_CHARS = 2000


class Citation(BaseModel):
    doc_id: str
    source: str
    start: int = Field(description="Offset of the cited span in the document's extracted text.")
    end: int
    text: str
    score: float
    pages: list[int] = Field(default_factory=list,
                             description="Pages (PDF, TIFF) or slides (PPTX) of the source that the span is on; "
                             "empty for a source without pages.")


class AskResponse(BaseModel):
    answer: str
    abstained: bool
    confidence: float
    answer_type: str
    mode: str
    citations: list[Citation]
    timings_ms: dict[str, float]
    notes: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class AbstentionThresholds:
    """Minimum scores below which the chain says "not found" (see docs/configuration.md for how they were set)."""

    # Best supporting sentence (cosine + keyword overlap), per query language; "*" for the others.
    evidence: Mapping[str, float] = field(default_factory=lambda: {"*": 0.0})
    # Extractive reader: p(start)·p(end) of the best span.
    span: float = 0.0
    # Cross-encoder relevance of the best passage (0 disables the check).
    rerank: float = 0.0
    # A heading of the passages this close to the question passes the gate even when no sentence does
    # (FAQ-style docs put the question in a heading); None: headings are not consulted.
    heading: float | None = None
    # Within this margin below the evidence threshold, a question still passes when the retrieval agrees on one
    # document: at least `agreement` of the first `AGREEMENT_WINDOW` ordered passages come from the top passage's
    # document (a page covering the question, phrased unlike any one sentence of it). None: never.
    agreement_margin: float | None = None
    agreement: int = 4
    # A generator that declines ("not in the passages") or writes nothing they support is overruled when the best
    # supporting sentence scores at least this much above the language's evidence threshold: the documents' own
    # sentences are quoted instead. None: never.
    overrule_margin: float | None = None

    def evidence_for(self, language: str) -> float:
        return self.evidence.get(language, self.evidence.get("*", 0.0))

    def agreement_passes(self, language: str, confidence: float, passages: Sequence[RetrievedPassage]) -> bool:
        """Does a question whose best sentence falls short pass on the retrieval's agreement (see above)?"""
        if self.agreement_margin is None or not passages or confidence < self.evidence_for(language) - self.agreement_margin:
            return False
        window = passages[:AGREEMENT_WINDOW]
        return sum(p.doc_id == window[0].doc_id for p in window) >= self.agreement


AGREEMENT_WINDOW = 5


class _Stopwatch:
    """Milliseconds per stage of one request, each stage timed from the end of the one before."""

    def __init__(self) -> None:
        self.started = self.clock = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round((now - self.clock) * 1000, 2)
        self.clock = now


@dataclass
class _Prepared:
    """What retrieval, reranking and the gate hand to the reader."""

    question: str
    query: str  # what retrieval and the gate used (the question, or a follow-up rewritten with history)
    mode: str
    reader: Reader
    passages: list[RetrievedPassage]
    reader_passages: list[ReaderPassage]
    evidence: ReaderResult
    timings: dict[str, float]
    notes: list[str]
    started: float
    clock: float  # when the read stage began
    signals: dict[str, float | None]
    supporting: list[ReaderSpan]  # the passages' sentences, best supporting first (`evidence` holds the top few)


@dataclass(frozen=True)
class ChainTrace:
    """A response with the passages the reader saw, for evaluation and debugging."""

    response: AskResponse
    passages: list[RetrievedPassage]
    # What the evidence gate saw: best sentence, best heading, best reranker score (None: not computed).
    signals: dict[str, float | None] = field(default_factory=dict)


def reader_passages(passages: Sequence[RetrievedPassage],
                    sentence_vectors: Mapping[int, np.ndarray] | None = None) -> list[ReaderPassage]:
    """What readers and the evidence scorer take of retrieved passages (key = chunk id), with the sentence
    vectors the index stored for them when given."""
    stored = sentence_vectors or {}
    return [ReaderPassage(p.chunk_id, p.text, p.start, stored.get(p.chunk_id), table_header(p.heading))
            for p in passages]


def table_header(heading: str | None) -> str | None:
    """The table rows of a chunk's heading path: the chunker puts a table's header there for the parts after
    its first (ingest.chunking)."""
    rows = [line for line in (heading or "").split("\n") if line.startswith("|")]
    return "\n".join(rows) if rows else None


def best_sentence_scores(sentences: Sequence[ReaderSpan]) -> dict[int, float]:
    """Passage key → the score of its best sentence, for sentences ranked best first."""
    best: dict[int, float] = {}
    for span in sentences:
        best.setdefault(span.key, span.score)
    return best


def order_by_evidence(passages: Sequence[RetrievedPassage], sentences: Sequence[ReaderSpan],
                      rank_prior: float) -> list[RetrievedPassage]:
    """Passages by their best supporting sentence's score plus `rank_prior` / (1 + their rank as given)."""
    best = best_sentence_scores(sentences)
    ranked = sorted(
        enumerate(passages),
        key=lambda item: (-(best.get(item[1].chunk_id, -1.0) + rank_prior / (1 + item[0])), item[0]),
    )
    return [p for _, p in ranked]


def order_by_rerank_and_evidence(passages: Sequence[RetrievedPassage], rerank_scores: Sequence[float],
                                 sentences: Sequence[ReaderSpan], *, retrieval_weight: float,
                                 evidence_weight: float) -> list[int]:
    """Indices of `passages` (in retrieval order) by reciprocal-rank fusion of three rankings: the retrieval
    order (`retrieval_weight`), the reranker's scores (weight 1) and each passage's best supporting
    sentence (`evidence_weight`). Ties keep the retrieval order."""
    best = best_sentence_scores(sentences)
    by_evidence = sorted(range(len(passages)), key=lambda i: (-best.get(passages[i].chunk_id, -1.0), i))
    fused = reciprocal_rank_fusion([list(range(len(passages))), fused_order(rerank_scores, 0.0), by_evidence],
                                   [retrieval_weight, 1.0, evidence_weight], k=RRF_K)
    return [i for i, _ in fused]


def _code_after(span: ReaderSpan, passage: ReaderPassage) -> ReaderSpan | None:
    """`span` widened to the fenced code block that follows it in `passage`, if one does."""
    block = code_block_after(passage.text, span.end - passage.offset)
    if block is None:
        return None
    start = span.start - passage.offset
    return ReaderSpan(span.key, span.start, passage.offset + block[1], passage.text[start:block[1]], span.score)


# Inline HTML that documentation pages write inside sentences (`<abbr title="...">`, `<dfn>`): markup, not text.
_INLINE_HTML = re.compile(
    r"</?(?:a|abbr|b|br|code|del|dfn|em|i|ins|kbd|mark|s|small|span|strong|sub|sup|u)\b[^<>]*>", re.IGNORECASE)
_WORD_OR_CJK_RUN = re.compile(rf"[{CJK_CHARS}]+|[^\W{CJK_CHARS}]+")


def _visible(text: str) -> str:
    """A sentence as a reader sees it: inline HTML tags removed, whitespace runs made one space."""
    return " ".join(_INLINE_HTML.sub("", text).split())


def _words(text: str) -> set[str]:
    """Lowercased words; a run of CJK characters (written without spaces) gives its character bigrams."""
    words: set[str] = set()
    for piece in _WORD_OR_CJK_RUN.findall(text.lower()):
        if CJK_CHAR.match(piece) and len(piece) > 1:
            words.update(piece[i : i + 2] for i in range(len(piece) - 1))
        else:
            words.add(piece)
    return words


def _shared_share(sentence: str, answer: str) -> float:
    """Share of the sentence's words that the answer already holds (tags are not words)."""
    words = _words(_visible(sentence))
    return len(words & _words(_visible(answer))) / len(words) if words else 1.0


# Quotes: candidates from the evidence ranking and the extractive reader's spans (their sentences), fused.
QUOTE_SUPPORTING_SENTENCES = 15
QUOTE_READER_SPANS = 10
QUOTE_SPARES = 2  # candidates past the ones to quote that may stand in for sentences the answer already says
# A sentence that says what does not hold ("doesn't create that endpoint", "cannot use", "is deprecated", 不能): for
# a yes/no question it is often the one that settles it, and the similarity rankings put it below the many
# sentences that only restate the question's topic (bench/RESULTS.md, docqa sixth pass).
_NEGATION = re.compile(r"n't\b|\b(?:not|no|never|cannot|deprecated|without)\b|[不没无未非别勿]", re.IGNORECASE)


def gate_signals(chain: AskChain, question: str) -> dict[str, float | None]:
    """What the evidence gate sees for `question` (headings scored even when the chain does not use them)."""
    thresholds = chain.thresholds
    # Thresholds nothing reaches: every signal is scored, and the chain stops at the gate (no reader runs).
    chain.thresholds = AbstentionThresholds({"*": float("inf")}, thresholds.span, thresholds.rerank,
                                            heading=float("inf"))
    try:
        return chain.trace(question).signals
    finally:
        chain.thresholds = thresholds


class AskChain:
    """Answer one question from one index, with the reader the request's `mode` names."""

    def __init__(
        self,
        retriever: HybridRetriever,
        readers: Mapping[str, Reader],
        evidence: SentenceReader,
        *,
        reranker: CrossEncoderReranker | None = None,
        top_k: int = 5,
        rerank_depth: int = 20,
        rerank_confident_depth: int | None = 5,
        thresholds: AbstentionThresholds | None = None,
        default_mode: str = "extractive",
        evidence_rank_prior: float | None = 0.1,
        extractive_languages: Collection[str] | None = None,
        rerank_languages: Collection[str] | None = None,
        rerank_evidence_weight: float = 0.0,
        quote_evidence: bool = True,
        quote_reader: Reader | None = None,
        evidence_quotes: int = 2,
        notes: list[str] | None = None,
    ) -> None:
        if default_mode not in readers:
            raise ValueError(f"default mode {default_mode!r} has no reader; readers: {sorted(readers)}")
        self.retriever = retriever
        self.readers = dict(readers)
        self.evidence = evidence
        self.reranker = reranker
        self.top_k = top_k
        self.rerank_depth = rerank_depth
        # When the dense and the keyword retrievers put the same passage first, retrieval is confident: only this
        # many candidates are reranked (None: always `rerank_depth`). At 5, SciFact-train nDCG@10 0.7228 → 0.7215
        # and the docqa pages found did not move, for a quarter of the questions (bench/RESULTS.md).
        self.rerank_confident_depth = rerank_confident_depth
        self.thresholds = thresholds or AbstentionThresholds()
        self.default_mode = default_mode
        # Without a cross-encoder, the top passages are re-ordered by their best supporting sentence
        # plus prior / (1 + fused rank): recall@1 0.750 → 0.818 on SQuAD-train questions (bench/RESULTS.md).
        self.evidence_rank_prior = evidence_rank_prior
        # Query languages the extractive reader was trained for (None: all); others get the best sentence.
        self.extractive_languages = None if extractive_languages is None else frozenset(extractive_languages)
        # Query languages the reranker was trained for (None: all); others keep the retriever's order.
        self.rerank_languages = None if rerank_languages is None else frozenset(rerank_languages)
        # Above 0, the reranked order also weighs each candidate's best supporting sentence (languages the
        # embedder serves): on XQuAD-shaped SQuAD-train data recall@1 0.936 → 0.955 (bench/RESULTS.md).
        self.rerank_evidence_weight = rerank_evidence_weight
        # Generated answers end with the documents' sentences that answer them, quoted (see `_quote`): the one
        # holding `quote_reader`'s best span (an extractive reader) and the best supporting sentences.
        self.quote_evidence = quote_evidence
        self.quote_reader = quote_reader
        self.evidence_quotes = evidence_quotes  # how many of the best supporting sentences follow the reader's
        self.notes = list(notes or [])  # facts about this chain every response carries (e.g. no reranker)

    @property
    def modes(self) -> list[str]:
        return sorted(self.readers)

    def run(
        self,
        question: str,
        *,
        mode: str | None = None,
        top_k: int | None = None,
        filters: MetadataFilter | None = None,
        retrieval_query: str | None = None,
        history: Sequence[Message] | None = None,
    ) -> AskResponse:
        return self.trace(question, mode=mode, top_k=top_k, filters=filters, retrieval_query=retrieval_query,
                          history=history).response

    def trace(
        self,
        question: str,
        *,
        mode: str | None = None,
        top_k: int | None = None,
        filters: MetadataFilter | None = None,
        retrieval_query: str | None = None,
        history: Sequence[Message] | None = None,
    ) -> ChainTrace:
        """`run`, keeping the passages the reader saw.

        `retrieval_query` (default: the question) is what retrieval and the evidence gate look for, e.g. a
        follow-up rewritten with the chat history; the reader answers `question`, seeing `history` if it can.
        """
        prepared = self._prepare(question, mode, top_k, filters, retrieval_query)
        if isinstance(prepared, ChainTrace):
            return prepared
        return self._finish(prepared, self._read(prepared, history))

    def _read(self, prepared: _Prepared, history: Sequence[Message] | None) -> ReaderResult:
        reader = prepared.reader
        if reader is self.evidence and prepared.query == prepared.question:
            return prepared.evidence
        if reader is self.evidence:  # a rewritten follow-up: the gate looked for the topic, answer the question
            return reader.run(prepared.question, prepared.reader_passages, top_k=3)
        result = reader.run(prepared.question, prepared.reader_passages, top_k=3, history=history,
                            retry_top_passage=self._retry_top_passage(prepared))
        return self._quote(prepared, result)[1] if reader.generates else result

    def _quote(self, prepared: _Prepared, result: ReaderResult) -> tuple[str, ReaderResult]:
        """The generated answer followed by the documents' own sentences that answer it, quoted and cited, unless the
        answer already says them: the reader sees the exact words the answer rests on (small models paraphrase away
        the names and phrases people look for).

        When the generator declined or wrote nothing the passages support but the evidence is strong
        (`thresholds.overrule_margin`), the answer is those quoted sentences alone (answer type "sentence")."""
        if not result.answer:
            overrule = self._overrule_level(prepared)
            if overrule is None or prepared.evidence.confidence < overrule:
                return "", result
            text, spans = self._quotes(prepared, "", [])
            if not text:
                return "", result
            note = ("the generator gave no answer the passages support, but the evidence is strong "
                    f"({prepared.evidence.confidence:.3f} ≥ {overrule:.3f}): the documents' sentences are quoted")
            lead = QUOTED_ANSWER_LEAD.get(reply_language(prepared.question), QUOTED_ANSWER_LEAD["*"])
            answer = f"{lead}\n\n{text}"
            return answer, ReaderResult(answer, "sentence", prepared.evidence.confidence, spans, [*result.notes, note])
        if not self.quote_evidence:
            return "", result
        text, spans = self._quotes(prepared, result.answer, list(result.spans))
        if not text:
            return "", result
        quote = f"\n\n{text}"
        return quote, ReaderResult(result.answer + quote, result.answer_type, result.confidence, spans, result.notes)

    def _overrule_level(self, prepared: _Prepared) -> float | None:
        """The evidence score at which an empty generated answer gives way to the quoted sentences (None: never)."""
        margin = self.thresholds.overrule_margin
        return None if margin is None else self.thresholds.evidence_for(query_language(prepared.question)) + margin

    def _retry_top_passage(self, prepared: _Prepared) -> bool | None:
        """False when the evidence would overrule an empty answer anyway: the quoted sentences beat a second
        generation there (a 0.5B model asked again with one passage said "Yes" where the documents say no);
        else the reader's default."""
        overrule = self._overrule_level(prepared)
        return False if overrule is not None and prepared.evidence.confidence >= overrule else None

    def _quotes(self, prepared: _Prepared, answer: str, spans: list[ReaderSpan]) -> tuple[str, list[ReaderSpan]]:
        """Block quotes of the sentences `_quote_spans` picks that `answer` does not already hold (the next candidates
        standing in for those it does), each cited `[n]` (numbers continue `spans`, reusing a span that already
        holds the sentence); for a how-to, the code block one of them (or a sentence of `spans`, or one of the
        next best supporting sentences) introduces, once."""
        quotes, said = [], answer
        ranked, wanted = self._quote_spans(prepared)
        chosen: list[tuple[ReaderSpan, ReaderSpan | None]] = [(best, None) for best in ranked[: wanted + QUOTE_SPARES]]
        if question_kind(prepared.question) == "howto":
            coded = self._code_quote(prepared, [*(best for best, _ in chosen[:wanted]), *spans], answer)
            if coded is not None:
                sentence, code = coded
                at = next((i for i, (best, _) in enumerate(chosen) if best == sentence), None)
                if at is None:
                    chosen.append(coded)
                else:
                    chosen[at] = coded
        for best, code in chosen:
            sentence = _visible(best.text)
            if not sentence or (code is None and (len(quotes) >= wanted or _shared_share(sentence, said) >= 0.8)):
                continue  # a code block always goes in (a how-to's code is the answer); sentences up to `wanted`
            cited = code or best
            number = next((i for i, span in enumerate(spans, 1) if span.key == cited.key and span.start <= cited.start
                           and cited.end <= span.end), None)
            if number is None:
                spans.append(cited)
                number = len(spans)
            quote = f"> {sentence} [{number}]"
            if code is not None:
                quote = f"{quote}\n\n{code.text[best.end - best.start:].strip()}"
            quotes.append(quote)
            said = f"{said} {cited.text}"
        return "\n\n".join(quotes), spans

    @staticmethod
    def _code_quote(prepared: _Prepared, quoted: list[ReaderSpan], answer: str) -> tuple[ReaderSpan, ReaderSpan] | None:
        """(sentence, sentence widened to its code block) for the first of the quoted (then the answer's own cited
        sentences), then the best supporting sentences that introduces a code block the answer does not already
        show: documentation gives the how as code right after the sentence that says what it does."""
        by_key = {p.key: p for p in prepared.reader_passages}
        for sentence in [*quoted, *prepared.evidence.spans]:
            if sentence.key not in by_key:
                continue
            code = _code_after(sentence, by_key[sentence.key])
            if code is not None and _shared_share(code.text[sentence.end - sentence.start:], answer) < 0.8:
                return sentence, code
        return None

    def _quote_spans(self, prepared: _Prepared) -> tuple[list[ReaderSpan], int]:
        """The documents' sentences that best answer the question: the extractive reader's best span widened to its
        sentence (for the languages it serves), then the `evidence_quotes` best of the supporting sentences and
        the reader's next spans' sentences, by reciprocal-rank fusion of the two rankings (either alone put the
        sentence that holds the answer lower; bench/RESULTS.md, docqa fifth pass). For a yes/no question a third
        ranking joins them: the supporting sentences that say what does not hold. Returns the candidates best first
        and how many to quote (the lead and `evidence_quotes`); the next ones stand in for sentences the answer
        already says."""
        reader_sentences: list[ReaderSpan] = []
        language = query_language(prepared.question)
        if self.quote_reader is not None and (self.extractive_languages is None or language in self.extractive_languages):
            found = self.quote_reader.run(prepared.question, prepared.reader_passages, top_k=QUOTE_READER_SPANS)
            by_key = {p.key: p for p in prepared.reader_passages}
            reader_sentences = [sentence_of(span, by_key[span.key]) for span in found.spans if span.key in by_key]
        # One id per distinct sentence text (overlapping chunks hold a sentence twice), numbered supporting
        # sentences first: fusion ties go to the better supporting sentence.
        ids: dict[str, int] = {}
        candidates: list[ReaderSpan] = []
        rankings: list[list[int]] = []
        supporting = prepared.supporting[:QUOTE_SUPPORTING_SENTENCES]
        sources = [supporting, reader_sentences]
        if question_kind(prepared.question) == "yesno":
            sources.append([span for span in supporting if _NEGATION.search(span.text)])
        for ranking in sources:
            ranked: list[int] = []
            for span in ranking:
                text = " ".join(span.text.split())
                if text not in ids:
                    ids[text] = len(candidates)
                    candidates.append(span)
                if ids[text] not in ranked:
                    ranked.append(ids[text])
            rankings.append(ranked)
        lead = reader_sentences[:1]  # the reader's best span's sentence leads (its own span: a text can recur)
        fused = [i for i, _ in reciprocal_rank_fusion(rankings, [1.0] * len(rankings), k=1) if i not in rankings[1][:1]]
        return lead + [candidates[i] for i in fused], len(lead) + self.evidence_quotes

    def stream(
        self,
        question: str,
        *,
        mode: str | None = None,
        top_k: int | None = None,
        filters: MetadataFilter | None = None,
        retrieval_query: str | None = None,
        history: Sequence[Message] | None = None,
    ) -> Iterator[str | AskResponse]:
        """Text deltas of the answer as the reader produces them, then the `AskResponse` (always last).

        Generative readers stream token by token; the others produce their answer at once (one delta).
        """
        prepared = self._prepare(question, mode, top_k, filters, retrieval_query)
        if isinstance(prepared, ChainTrace):
            yield prepared.response.answer
            yield prepared.response
            return
        if not prepared.reader.generates:  # a span answer goes out whole, as `_finish` leaves it (it may abstain)
            response = self._finish(prepared, self._read(prepared, history)).response
            yield response.answer
            yield response
            return
        result: ReaderResult | None = None
        for event in prepared.reader.stream(prepared.question, prepared.reader_passages, history=history,
                                            retry_top_passage=self._retry_top_passage(prepared)):
            if isinstance(event, str):
                yield event
            else:
                result = event
        assert result is not None, "a reader stream always ends with its result"
        quote, result = self._quote(prepared, result)
        if quote:
            yield quote
        yield self._finish(prepared, result).response

    def _prepare(self, question: str, mode: str | None, top_k: int | None, filters: MetadataFilter | None,
                 retrieval_query: str | None) -> _Prepared | ChainTrace:
        """Retrieve, rerank and gate: a `ChainTrace` when the chain abstains, else what the reader needs."""
        question, query, mode = self._checked(question, mode, retrieval_query)
        top_k = top_k or self.top_k
        reader = self.readers[mode]
        notes = list(self.notes)
        watch = _Stopwatch()
        language = query_language(question)
        # The evidence score leans on the embedder's cosine: it only re-orders languages the embedder serves
        # (re-ordering Chinese by the English MiniLM dropped XQuAD-zh recall@1 from 0.924 to 0.838).
        served = self.retriever.dense_languages
        embedder_serves = served is None or language in served
        ordered, stored, rerank_score, reranked = self._ranked(query, language, top_k, filters, embedder_serves,
                                                               watch, notes)
        passages = ordered[:top_k]
        for_reader = reader_passages(passages, stored)

        # Evidence gate: is any sentence of the passages close enough to the question to answer it?
        sentences = self.evidence.rank_sentences(query, for_reader, top_k=self.evidence.max_sentences)
        if not reranked and self.evidence_rank_prior is not None and embedder_serves and len(passages) > 1:
            passages = order_by_evidence(passages, sentences, self.evidence_rank_prior)
            for_reader = reader_passages(passages, stored)
        evidence = self.evidence.answer(sentences)
        sentence_passes = evidence.confidence >= self.thresholds.evidence_for(language)
        # Headings are scored only when the best sentence falls short: most questions never pay for them.
        heading = (self.evidence.best_heading_score(query, for_reader)
                   if not sentence_passes and passages and self.thresholds.heading is not None and embedder_serves
                   else None)
        agreed = not sentence_passes and self.thresholds.agreement_passes(language, evidence.confidence, ordered)
        signals = {"sentence": evidence.confidence, "heading": heading, "rerank": rerank_score,
                   "agreement": float(agreed)}
        watch.lap("evidence")
        reason = self._abstention_reason(passages, filters, language, evidence.confidence,
                                         sentence_passes or agreed, heading, rerank_score)
        if reason is not None:
            watch.timings["read"] = 0.0
            watch.timings["total"] = round((time.perf_counter() - watch.started) * 1000, 2)
            return ChainTrace(self._abstain(passages, evidence.confidence, reader, mode, watch.timings,
                                            [*notes, reason]), passages, signals)

        if (mode == "extractive" and reader is not self.evidence and self.extractive_languages is not None
                and language not in self.extractive_languages):
            notes.append(f"the extractive reader serves {', '.join(sorted(self.extractive_languages))}, "
                         f"not {language}: the answer is the best supporting sentence")
            reader = self.evidence
        return _Prepared(question, query, mode, reader, passages, for_reader, evidence, watch.timings, notes,
                         watch.started, watch.clock, signals, sentences)

    def _checked(self, question: str, mode: str | None, retrieval_query: str | None) -> tuple[str, str, str]:
        """(question, what retrieval looks for, mode) of a request, or ValueError saying what is wrong with it."""
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
        query = (retrieval_query or "").strip() or question
        if len(query) > 2 * MAX_QUESTION_CHARS:
            query = query[-2 * MAX_QUESTION_CHARS :]
        mode = mode or self.default_mode
        if mode not in self.readers:
            raise ValueError(f"unknown mode {mode!r}; available: {', '.join(self.modes)}")
        return question, query, mode

    def _ranked(self, query: str, language: str, top_k: int, filters: MetadataFilter | None, embedder_serves: bool,
                watch: _Stopwatch, notes: list[str]
                ) -> tuple[list[RetrievedPassage], dict[int, np.ndarray], float | None, bool]:
        """Every candidate in the chain's order (retrieved, reranked and weighed with the evidence where the reranker
        serves the language), the sentence vectors the index stored for them, the best reranker score, and whether
        the reranker ran."""
        reranks = self.reranker is not None and (self.rerank_languages is None or language in self.rerank_languages)
        if self.reranker is not None and not reranks:
            notes.append(f"the reranker serves {', '.join(sorted(self.rerank_languages or ()))}, not {language}: "
                         "passages are in retrieval order")
        # Retrieval also fetches the passages the agreement signal looks at (AbstentionThresholds.agreement_passes).
        depth = max(top_k, self.rerank_depth if reranks else 0,
                    AGREEMENT_WINDOW if self.thresholds.agreement_margin is not None else 0)
        passages = self.retriever.run(query, top_k=depth, filters=filters).passages
        stored = self.retriever.sentence_vectors([p.chunk_id for p in passages])
        watch.lap("retrieve")
        rerank_score = None
        if reranks and passages:
            count = self._rerank_count(passages)
            head, tail = passages[:count], passages[count:]
            reranked = self.reranker.run(query, [p.indexed_text for p in head])
            watch.lap("rerank")
            order = reranked.order
            if self.rerank_evidence_weight > 0 and embedder_serves and len(head) > 1:
                order = order_by_rerank_and_evidence(
                    head, reranked.scores,
                    self.evidence.rank_sentences(query, reader_passages(head, stored), top_k=self.evidence.max_sentences),
                    retrieval_weight=self.reranker.retrieval_weight, evidence_weight=self.rerank_evidence_weight)
            passages = [head[i] for i in order] + tail
            rerank_score = reranked.scores[order[0]]
        else:
            watch.lap("rerank")
        watch.lap("order")  # the reranked candidates ordered with the evidence ranking (their stored sentence vectors)
        return passages, stored, rerank_score, reranks

    def _abstention_reason(self, passages: Sequence[RetrievedPassage], filters: MetadataFilter | None, language: str,
                           confidence: float, evidence_passes: bool, heading: float | None,
                           rerank_score: float | None) -> str | None:
        """Why the chain says "not found" (None: it answers)."""
        if not passages:
            return "no passage matched the question" + (" and the filters" if filters and not filters.is_empty else "")
        if not evidence_passes and (heading is None or heading < self.thresholds.heading):
            return (f"best supporting sentence scored {confidence:.3f}, below the "
                    f"{language} threshold {self.thresholds.evidence_for(language):.3f}")
        if rerank_score is not None and rerank_score < self.thresholds.rerank:
            return f"best passage's reranker score {rerank_score:.3f} is below {self.thresholds.rerank:.3f}"
        return None

    def _rerank_count(self, passages: Sequence[RetrievedPassage]) -> int:
        """How many of the retrieved candidates to rerank: fewer when both retrievers rank the first one first."""
        top = passages[0]
        confident = self.rerank_confident_depth is not None and top.dense_rank == 1 and top.bm25_rank == 1
        return min(self.rerank_confident_depth, len(passages)) if confident else len(passages)

    def _finish(self, prepared: _Prepared, result: ReaderResult) -> ChainTrace:
        now = time.perf_counter()
        timings = {**prepared.timings, "read": round((now - prepared.clock) * 1000, 2),
                   "total": round((now - prepared.started) * 1000, 2)}
        notes = [*prepared.notes, *result.notes]
        reason = None
        if not result.answer:
            reason = "the reader found no answer"
        elif result.answer_type == "span" and result.confidence < self.thresholds.span:
            reason = f"best answer span scored {result.confidence:.3f}, below {self.thresholds.span:.3f}"
        passages, mode = prepared.passages, prepared.mode
        if reason is not None:
            response = self._abstain(passages, result.confidence, prepared.reader, mode, timings, [*notes, reason])
            return ChainTrace(response, passages, prepared.signals)
        return ChainTrace(self._answer(result, passages, mode, timings, notes), passages, prepared.signals)

    def _answer(self, result: ReaderResult, passages: list[RetrievedPassage], mode: str,
                timings: dict[str, float], notes: list[str]) -> AskResponse:
        by_chunk = {p.chunk_id: p for p in passages}
        citations = [self._citation(by_chunk[s.key], s.start, s.end, s.text, s.score)
                     for s in result.spans if s.key in by_chunk]
        return AskResponse(answer=result.answer, abstained=False, confidence=result.confidence,
                           answer_type=result.answer_type, mode=mode, citations=citations, timings_ms=timings,
                           notes=notes)

    def _citation(self, passage: RetrievedPassage, start: int, end: int, text: str, score: float) -> Citation:
        return Citation(doc_id=passage.doc_id, source=passage.source, start=start, end=end, text=text, score=score,
                        pages=self.retriever.pages(passage.doc_id, start, end))

    def _abstain(self, passages: list[RetrievedPassage], confidence: float, reader: Reader, mode: str,
                 timings: dict[str, float], notes: list[str]) -> AskResponse:
        """"Not found", with the closest passages so the user can look for themselves."""
        closest = [self._citation(p, p.start, p.end, p.text, p.score) for p in passages[:3]]
        return AskResponse(answer=NOT_FOUND, abstained=True, confidence=confidence, answer_type=reader.answer_type,
                           mode=mode, citations=closest, timings_ms=timings, notes=notes)
