"""Generative reader: a text generator answers from numbered passages and cites them as [n].

The prompt numbers the passages [1]..[n], asks for an answer that cites them,
and for one fixed sentence when the passages do not hold the answer. The
model's citation markers are then checked and rewritten as it writes:

- a number outside 1..n is dropped from the answer and reported in `notes`;
- the valid ones are renumbered in order of first appearance, so that in the
  returned answer `[k]` refers to `result.spans[k - 1]`;
- each cited passage is resolved to the sentence (or the stretch of sentences,
  or failing any word overlap, the whole passage) that best supports the
  answer sentences citing it, as offsets into the document text.

An answer that cites nothing falls back to the passage whose sentence overlaps
the answer most, and `notes` says the citation was inferred. `stream()` yields
the same rewritten answer as text deltas, then the same `ReaderResult` as
`run()`, so an SSE endpoint can forward the deltas and send the citations last.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from generators.reading import AnswerType, ReaderPassage, ReaderResult, ReaderSpan
from generators.sentence_reader import split_sentences
from generators.text_generators import Message, TextGenerator

NOT_FOUND_REPLY = "The passages do not contain the answer."

SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given. "
    "Answer briefly, and after each sentence of your answer cite the passages that support it "
    "by their numbers in square brackets, like [1] or [2][3]. "
    f"If the passages do not contain the answer, reply exactly: {NOT_FOUND_REPLY}"
)

# What a reader stream yields: text deltas of the answer, then one final ReaderResult.
ReaderStreamEvent = str | ReaderResult

# [1], [1, 2], [1][2], 【1】, ［1］, [passage 1]: a citation marker as models write them.
_OPEN, _CLOSE = "[【［", "]】］"
_OPEN_SET, _CLOSE_SET = re.escape(_OPEN), re.escape(_CLOSE)  # as character-class bodies
_MARKER = re.compile(
    rf"[{_OPEN_SET}]\s*(?:(?:passages?|sources?|documents?|docs?)\s*)?"
    rf"(\d{{1,4}}(?:\s*(?:,|，|、|;|and)\s*\d{{1,4}})*)\s*[{_CLOSE_SET}]",
    re.IGNORECASE,
)
# A buffer that may still grow into a marker: an opening bracket and a short, unclosed tail.
_PARTIAL_MARKER = re.compile(rf"[{_OPEN_SET}][^{_OPEN_SET}{_CLOSE_SET}\n]{{0,30}}")
_REWRITTEN_MARKER = re.compile(r"\[(\d+)\]")

# CJK ideograph blocks (the same ranges as index/bm25.py, which generators/ must not import).
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TERM = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were which with".split()
)


def passage_terms(text: str) -> set[str]:
    """Words (lowercased, minus stopwords) and CJK characters plus character bigrams."""
    terms: set[str] = set()
    for piece in _TERM.findall(text.lower()):
        if _CJK_CHAR.match(piece):
            terms.update(piece)
            terms.update(piece[i : i + 2] for i in range(len(piece) - 1))
        elif piece not in _STOPWORDS:
            terms.add(piece)
    return terms


def support_score(claim_terms: set[str], sentence_terms: set[str]) -> float:
    """How much of the claim the sentence covers (recall), with a little precision to prefer tight sentences."""
    if not claim_terms or not sentence_terms:
        return 0.0
    shared = len(claim_terms & sentence_terms)
    return shared / len(claim_terms) + 0.1 * shared / len(sentence_terms)


@dataclass(frozen=True)
class ReaderPrompt:
    """The messages sent to the generator and the passages they number, [1] first."""

    messages: list[Message]
    passages: list[ReaderPassage]  # possibly cut to fit the context budget; offsets unchanged


class CitationRewriter:
    """Checks and renumbers citation markers in a stream of answer text.

    `feed()` returns the text that can be emitted now (a possible marker is held
    back until it closes); `finish()` flushes the rest. Out-of-range numbers are
    dropped with the space before them; valid ones become `[k]`, k counting
    cited passages in order of first appearance.
    """

    def __init__(self, passage_count: int) -> None:
        self.passage_count = passage_count
        self.new_number: dict[int, int] = {}  # prompt number → number in the rewritten answer
        self.out_of_range: list[int] = []
        self._buffer = ""
        self._pending_space = ""
        self._adjacent: list[int] = []  # numbers of the markers emitted since the last text, for "[1][1]"

    @property
    def cited_passages(self) -> list[int]:
        """Prompt numbers (1-based) of the cited passages, in rewritten order."""
        return sorted(self.new_number, key=self.new_number.__getitem__)

    def feed(self, delta: str) -> str:
        self._buffer += delta
        return self._process(final=False)

    def finish(self) -> str:
        out = self._process(final=True)
        self._pending_space = ""  # trailing whitespace is never emitted
        return out

    def _process(self, *, final: bool) -> str:
        out: list[str] = []
        while self._buffer:
            opening = min((i for i in (self._buffer.find(c) for c in _OPEN) if i >= 0), default=-1)
            if opening == -1:
                out.append(self._text(self._buffer))
                self._buffer = ""
            elif opening > 0:
                out.append(self._text(self._buffer[:opening]))
                self._buffer = self._buffer[opening:]
            elif match := _MARKER.match(self._buffer):
                out.append(self._marker(match))
                self._buffer = self._buffer[match.end() :]
            elif not final and _PARTIAL_MARKER.fullmatch(self._buffer):
                break  # wait for the bracket to close
            else:  # a bracket that is not a citation: plain text
                out.append(self._text(self._buffer[0]))
                self._buffer = self._buffer[1:]
        return "".join(out)

    def _text(self, text: str) -> str:
        # Hold trailing whitespace back: a dropped marker right after it takes it along.
        full = self._pending_space + text
        body = full.rstrip()
        self._pending_space = full[len(body) :]
        if body:
            self._adjacent = []
        return body

    def _marker(self, match: re.Match[str]) -> str:
        kept: list[int] = []
        for number in map(int, re.findall(r"\d+", match.group(1))):
            if not 1 <= number <= self.passage_count:
                if number not in self.out_of_range:
                    self.out_of_range.append(number)
                continue
            renumbered = self.new_number.setdefault(number, len(self.new_number) + 1)
            if renumbered not in kept and renumbered not in self._adjacent:
                kept.append(renumbered)
        if not kept:
            self._pending_space = ""
            return ""
        text = self._pending_space + "".join(f"[{k}]" for k in kept)
        self._pending_space = ""
        self._adjacent.extend(kept)
        return text


@dataclass(frozen=True)
class CitationResolution:
    """A rewritten answer and the spans its markers point to (`[k]` → `spans[k - 1]`)."""

    answer: str
    spans: list[ReaderSpan]
    out_of_range: list[int] = field(default_factory=list)  # prompt numbers the model cited that do not exist
    inferred: bool = False  # no marker: the span was chosen by word overlap with the answer
    notes: list[str] = field(default_factory=list)


def _claims_by_marker(answer: str) -> dict[int, list[str]]:
    """For each rewritten marker number, the answer sentences (markers removed) that cite it."""
    claims: dict[int, list[str]] = {}
    previous_claim = ""
    for start, end in split_sentences(answer):
        sentence = answer[start:end]
        numbers = [int(n) for n in _REWRITTEN_MARKER.findall(sentence)]
        claim = _REWRITTEN_MARKER.sub(" ", sentence).strip()
        if not passage_terms(claim):
            claim = previous_claim  # "... capital. [1]": a bare marker cites the sentence before it
        else:
            previous_claim = claim
        for number in numbers:
            claims.setdefault(number, []).append(claim or answer)
    return claims


def _supporting_span(passage: ReaderPassage, claims: Sequence[str]) -> ReaderSpan:
    """The passage sentence(s) that best support the claims, as document offsets."""
    sentences = split_sentences(passage.text)
    sentence_terms = [passage_terms(passage.text[s:e]) for s, e in sentences]
    chosen: list[tuple[int, int]] = []
    scores: list[float] = []
    for claim in claims:
        terms = passage_terms(claim)
        ranked = [(support_score(terms, st), -i) for i, st in enumerate(sentence_terms)]
        if not ranked:
            continue
        best_score, best_negative_index = max(ranked)
        if best_score > 0:
            chosen.append(sentences[-best_negative_index])
            scores.append(best_score)
    if chosen:
        start, end = min(s for s, _ in chosen), max(e for _, e in chosen)
        score = sum(scores) / len(scores)
    else:  # no word in common: the passage as a whole is what was cited
        text = passage.text
        start, end = len(text) - len(text.lstrip()), len(text.rstrip())
        score = 0.0
    return ReaderSpan(passage.key, passage.offset + start, passage.offset + end, passage.text[start:end], round(min(score, 1.0), 4))


def resolve_citations(rewriter: CitationRewriter, answer: str, passages: Sequence[ReaderPassage]) -> CitationResolution:
    """Spans for the markers of an answer already rewritten by `rewriter` over `passages`."""
    notes: list[str] = []
    if rewriter.out_of_range:
        numbers = ", ".join(f"[{n}]" for n in rewriter.out_of_range)
        notes.append(
            f"the answer cited {numbers}, but only {len(passages)} passage(s) were given; "
            "those citations were dropped"
        )
    cited = rewriter.cited_passages
    if not cited:
        span = _best_overlapping_span(answer, passages)
        if span is None:
            notes.append("the answer cites no passage and shares no words with any passage")
            return CitationResolution(answer, [], rewriter.out_of_range, False, notes)
        notes.append("the answer cites no passage; its citation is inferred from word overlap with the answer")
        return CitationResolution(answer, [span], rewriter.out_of_range, True, notes)
    claims = _claims_by_marker(answer)
    spans = [_supporting_span(passages[prompt_number - 1], claims.get(k, [answer])) for k, prompt_number in enumerate(cited, 1)]
    return CitationResolution(answer, spans, rewriter.out_of_range, False, notes)


def _best_overlapping_span(answer: str, passages: Sequence[ReaderPassage]) -> ReaderSpan | None:
    candidates = [_supporting_span(p, [answer]) for p in passages]
    best = max(candidates, key=lambda span: span.score, default=None)
    return best if best is not None and best.score > 0 else None


def is_not_found_reply(answer: str) -> bool:
    """Whether the model gave the fixed "not in the passages" reply (case, spacing and markers aside)."""
    def normal(text: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", _MARKER.sub(" ", text).lower()).split())

    return bool(answer.strip()) and normal(answer).startswith(normal(NOT_FOUND_REPLY))


class GenerativeReader:
    """Answers from passages with a `TextGenerator`, citing exact spans of the sources.

    `confidence` is the mean word-overlap support of the cited spans (0..1),
    halved when the citation had to be inferred: a generator has no calibrated
    score, so it is comparable within this reader only.
    """

    answer_type: AnswerType = "generated"

    def __init__(
        self,
        generator: TextGenerator,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        max_context_chars: int = 6000,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        self.generator = generator
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.max_context_chars = max_context_chars
        self.system_prompt = system_prompt

    def build_prompt(
        self, question: str, passages: Sequence[ReaderPassage], *, history: Sequence[Message] | None = None
    ) -> ReaderPrompt:
        """System instructions, then earlier chat turns (if any), then the numbered passages and the question."""
        kept: list[ReaderPassage] = []
        budget = self.max_context_chars
        for passage in passages:
            if budget <= 0:
                break
            text = passage.text.rstrip()
            if len(text) > budget:  # cut the tail: a prefix keeps the passage's offsets valid
                text = text[:budget]
            kept.append(ReaderPassage(passage.key, text, passage.offset))
            budget -= len(text)
        numbered = "\n\n".join(f"[{i}] {p.text.strip()}" for i, p in enumerate(kept, 1))
        user = f"Passages:\n\n{numbered}\n\nQuestion: {question.strip()}"
        messages: list[Message] = [{"role": "system", "content": self.system_prompt}]
        messages.extend({"role": m["role"], "content": m["content"]} for m in history or [])
        messages.append({"role": "user", "content": user})
        return ReaderPrompt(messages, kept)

    def run(
        self,
        question: str,
        passages: Sequence[ReaderPassage],
        *,
        top_k: int = 3,
        history: Sequence[Message] | None = None,
    ) -> ReaderResult:
        """Generate, then check and resolve the citations. `top_k` is unused: every cited span is kept."""
        prompt = self.build_prompt(question, passages, history=history)
        if not prompt.passages:
            return self._no_passages()
        answer = self.generator.generate(prompt.messages, max_new_tokens=self.max_new_tokens, temperature=self.temperature)
        events = list(self._rewrite([answer], prompt))
        result = events[-1]
        assert isinstance(result, ReaderResult)
        return result

    def stream(
        self,
        question: str,
        passages: Sequence[ReaderPassage],
        *,
        history: Sequence[Message] | None = None,
    ) -> Iterator[ReaderStreamEvent]:
        """Text deltas of the rewritten answer as the generator streams, then the `ReaderResult` (always last).

        The deltas joined equal `result.answer`, except for the fixed
        "not in the passages" reply, after which `result.answer` is "".
        Closing the iterator early closes the generator's stream.
        """
        prompt = self.build_prompt(question, passages, history=history)
        if not prompt.passages:
            yield self._no_passages()
            return
        pieces = self.generator.stream(prompt.messages, max_new_tokens=self.max_new_tokens, temperature=self.temperature)
        try:
            yield from self._rewrite(pieces, prompt)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    def _no_passages(self) -> ReaderResult:
        return ReaderResult("", self.answer_type, 0.0, [], ["no passages to read"])

    def _rewrite(self, pieces: Iterable[str], prompt: ReaderPrompt) -> Iterator[ReaderStreamEvent]:
        rewriter = CitationRewriter(len(prompt.passages))
        emitted: list[str] = []
        for piece in itertools.chain(pieces, [None]):  # None: the end, flush the rewriter
            out = rewriter.feed(piece) if piece is not None else rewriter.finish()
            if not emitted:
                out = out.lstrip()
            if out:
                emitted.append(out)
                yield out
        yield self._result("".join(emitted), rewriter, prompt.passages)

    def _result(self, answer: str, rewriter: CitationRewriter, passages: Sequence[ReaderPassage]) -> ReaderResult:
        if not answer:
            return ReaderResult("", self.answer_type, 0.0, [], ["the generator returned no text"])
        if is_not_found_reply(answer):
            return ReaderResult("", self.answer_type, 0.0, [], ["the generator replied that the passages do not contain the answer"])
        resolution = resolve_citations(rewriter, answer, passages)
        support = [span.score for span in resolution.spans]
        confidence = sum(support) / len(support) if support else 0.0
        if resolution.inferred:
            confidence /= 2
        return ReaderResult(resolution.answer, self.answer_type, round(confidence, 4), resolution.spans, resolution.notes)
