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
from dataclasses import dataclass, field, replace

from common.language import CJK_CHAR, CJK_CHARS, has_cjk
from generators.text.reading import AnswerType, ReaderEvent, ReaderPassage, ReaderResult, ReaderSpan
from generators.text.question_kinds import QuestionKind, question_kind
from generators.text.sentence_reader import split_sentences
from generators.text.text_generators import Message, TextGenerator

NOT_FOUND_REPLY = "The passages do not contain the answer."
RETRY_NOTE = "asked again with the top passage alone"

# Fixed for every request, so llama.cpp evaluates it once and reuses its KV cache.
SYSTEM_PROMPT = (
    "You answer questions about documentation using only the numbered passages you are given. "
    "Answer in a few short sentences, and after each sentence cite the passages that support it "
    "by their numbers in square brackets, like [1] or [2][3]. Say the answer directly (never \"the passage "
    "states\"), and copy names, options and code exactly as the passages write them. Never add facts that "
    "are not in the passages. "
    f"If the passages do not contain the answer, reply exactly: {NOT_FOUND_REPLY}"
)

# What each kind of question gets, said after the question (the system prompt stays fixed).
KIND_INSTRUCTIONS: dict[QuestionKind, str] = {
    "yesno": 'Start your answer with "Yes" or "No", then say why in one or two sentences.',
    "howto": "Give the steps briefly; if a passage shows the code for it, include that code block.",
    "compare": "Name both sides and say how they differ.",
    "explain": "Explain it in two or three sentences.",
    "factoid": "Answer in one or two sentences.",
}

# Said after the instruction when the question is Chinese: "Answer in Chinese."
CHINESE_REPLY = "请用中文回答。"

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

_TERM = re.compile(rf"[{CJK_CHARS}]+|[^\W_{CJK_CHARS}]+", re.UNICODE)
_WORD = re.compile(r"\w")  # a segment without one (markers, punctuation, blank lines) says nothing
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were which with".split()
)
# Words an answer adds around a claim that a passage need not hold ("Yes, you can use ...").
_ANSWER_FILLER = frozenset(
    "yes no not you your can cannot could should would will do does did need needs use using used also just "
    "so then there here they them their we our i me my if when what how why which one way "
    "follow following these those steps step below".split()
)
_FENCE = "```"


def passage_terms(text: str) -> set[str]:
    """Words (lowercased, minus stopwords) and CJK characters plus character bigrams."""
    terms: set[str] = set()
    for piece in _TERM.findall(text.lower()):
        if CJK_CHAR.match(piece):
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


def _segments(text: str) -> list[tuple[int, int]]:
    """(start, end) of the sentences of `text`, with each fenced code block as one segment."""
    segments: list[tuple[int, int]] = []
    position = 0
    for match in re.finditer(r"```.*?(?:```|$)", text, re.DOTALL):
        segments.extend((position + s, position + e) for s, e in split_sentences(text[position:match.start()]))
        segments.append((match.start(), match.end()))
        position = match.end()
    segments.extend((position + s, position + e) for s, e in split_sentences(text[position:]))
    return segments


def trim_passages(question: str, passages: Sequence[ReaderPassage], budget: int,
                  max_passages: int = 3) -> tuple[list[ReaderPassage], list[str]]:
    """The passages worth showing and, for each, its text cut to the segments that matter, within `budget` chars.

    A segment scores by the question words it shares, plus a little for its passage's rank; segments are
    taken best first while they fit, and shown in document order, gaps marked by "…".
    """
    wanted = passage_terms(question) - _ANSWER_FILLER
    scored: list[tuple[float, int, int, tuple[int, int]]] = []
    for rank, passage in enumerate(passages[:max_passages]):
        for order, (start, end) in enumerate(_segments(passage.text)):
            shared = len(wanted & passage_terms(passage.text[start:end]))
            prior = 1.5 / (1 + rank)  # the chain's order counts: the top passage's sentences first
            scored.append((shared + prior, rank, order, (start, end)))
    scored.sort(key=lambda item: (-item[0], item[1], item[2]))
    chosen: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    used = 0
    for score, rank, order, (start, end) in scored:
        length = end - start
        if used + length > budget:
            continue
        chosen.setdefault(rank, []).append((order, (start, end)))
        used += length
    kept: list[ReaderPassage] = []
    rendered: list[str] = []
    for rank in sorted(chosen):
        passage = passages[rank]
        segments = _segments(passage.text)
        orders = _with_table_headers(passage.text, segments, {order for order, _ in chosen[rank]})
        pieces, last_order = [], None
        if passage.table_header and _is_table_row(passage.text[slice(*segments[min(orders)])]):
            pieces.append(passage.table_header)  # rows of a table whose header is in an earlier chunk
        for order in sorted(orders):
            if last_order is not None and order != last_order + 1:
                pieces.append("…")
            pieces.append(passage.text[slice(*segments[order])])
            last_order = order
        kept.append(passage)
        rendered.append(_join_pieces(pieces))
    return kept, rendered


_TABLE_RULE = re.compile(r"(?m)^\|(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*$")


def _is_table_row(segment: str) -> bool:
    return segment.startswith("|") and segment.rstrip().endswith("|")


def _with_table_headers(text: str, segments: list[tuple[int, int]], orders: set[int]) -> set[int]:
    """`orders` plus the header and rule rows of every table one of whose rows is kept: a row means nothing to a
    reader without the column names."""
    wanted = set(orders)
    for order in orders:
        if not _is_table_row(text[slice(*segments[order])]):
            continue
        row = order
        while row > 0 and _is_table_row(text[slice(*segments[row - 1])]):
            row -= 1  # up to the table's first row
        if row + 1 < len(segments) and _TABLE_RULE.fullmatch(text[slice(*segments[row + 1])].strip()):
            wanted.update((row, row + 1))
    return wanted


def _join_pieces(pieces: list[str]) -> str:
    """Sentences joined by a space; with a code block, every piece on its own line; table rows on theirs."""
    if any(_FENCE in piece for piece in pieces):
        return "\n".join(pieces)
    out = ""
    for piece in pieces:
        if out:
            out += "\n" if piece.startswith("|") or out.endswith("|") else " "
        out += piece
    return out


def claim_support(claim: str, held: set[str], asked: set[str] = frozenset()) -> float | None:
    """Share of the claim's content words among the passage terms `held` (None: the claim makes no checkable
    statement). Words of the question (`asked`) are left out when the claim has others: then what the claim
    adds to the question must come from the passages ("Add a middleware that compresses WebSocket messages"
    holds the question's "WebSocket" and "messages", not "middleware" or "compresses")."""
    terms = passage_terms(claim) - _ANSWER_FILLER
    if not terms:
        return None
    terms = (terms - asked) or terms
    return len(terms & held) / len(terms)


# Names, numbers and code in an answer: `inline code`, snake_case, camelCase, dotted.names, anything with a digit.
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_NAME_LIKE = re.compile(r"[\w.]*(?:\d|_|[a-z][A-Z]|[A-Za-z]\.[A-Za-z])[\w.]*")


def specific_terms(text: str) -> set[str]:
    """The terms of the names, numbers and code `text` mentions (`passage_terms` of them, one-character terms
    left out): what a small model invents when the passages lack the answer ("`gcloud run deploy`", "1MB",
    "HelloService"), and what an answer from the passages copies from them."""
    names = _INLINE_CODE.findall(text) + _NAME_LIKE.findall(_INLINE_CODE.sub(" ", text))
    return {term for term in passage_terms(" ".join(names)) if len(term) > 1}


class SupportGate:
    """Holds the model's raw text back segment by segment (a sentence, or a whole code block) and lets a segment
    through only when the passages it cites (or, citing none, any passage) hold enough of its content words.

    `feed()` returns the checked text that can go on now; `finish()` checks and returns the rest.
    """

    def __init__(self, passages: Sequence[ReaderPassage], min_support: float, *, question: str = "",
                 grounded_names: bool = False, novel_support: bool = False, cite_unmarked: bool = False) -> None:
        self.passages = list(passages)
        self._terms = [passage_terms(p.text) for p in self.passages]  # once, not per answer sentence
        self.min_support = min_support
        # Every name, number and piece of code a segment mentions must be in some passage (or the question).
        self.grounded_names = grounded_names
        self._asked = passage_terms(question)
        self._known = self._asked.union(*self._terms)
        # Support judged on the words a segment adds to the question (see `claim_support`).
        self.novel_support = novel_support
        self._discounted = self._asked if novel_support else frozenset()  # question words `claim_support` sets aside
        # A supported sentence the model left without a marker gets one for the passage that best supports it.
        self.cite_unmarked = cite_unmarked
        self.dropped: list[str] = []
        self.kept_claims = 0
        self.declined = False  # the model gave the fixed "not in the passages" reply (held back, never streamed)
        self._buffer = ""
        # Claim-less segments ("Yes.") and lead-ins ("Here is the code:") wait for a supported claim before going out;
        # a lead-in left waiting at the end introduced something dropped, and goes too.
        self._held: list[tuple[str, bool]] = []  # (segment, is a lead-in)

    def feed(self, delta: str) -> str:
        self._buffer += delta
        out = []
        while (cut := self._segment_end()) is not None:
            segment, self._buffer = self._buffer[:cut], self._buffer[cut:]
            out.append(self._check(segment))
        return "".join(out)

    def finish(self) -> str:
        segment, self._buffer = self._buffer, ""
        out = self._check(segment) if segment else ""
        self._drop_waiting_lead_ins()
        if self._held and (self.kept_claims or not self.dropped):
            out += "".join(segment for segment, _ in self._held)
        self._held = []
        return out

    def _segment_end(self) -> int | None:
        """Where the first complete segment of the buffer ends (after its trailing markers), if one is complete."""
        text = self._buffer
        fence = text.find(_FENCE)
        if fence != -1 and not text[:fence].strip():
            closing = text.find(_FENCE, fence + 3)
            if closing == -1:
                return None
            end = closing + 3
            return end if len(text) > end else None
        for match in re.finditer(r"[.!?。！？:](?=\s)|\n", text[:fence] if fence != -1 else text):
            end = match.end()
            if _LIST_MARKER.fullmatch(text[:end]):  # "2. " opens a list item: the item's sentence is the segment
                continue
            if match.group() != "\n" and text.count("`", 0, end) % 2:  # inside `inline code`: `"tax": 10.5`
                continue
            trailing = _TRAILING_MARKERS.match(text, end)
            end = trailing.end() if trailing else end
            rest = text[end:]
            if rest.strip() and not _PARTIAL_MARKER.match(rest.lstrip()):  # something follows: the segment is whole
                return end
        return fence if fence != -1 else None  # the text before a code block is a segment of its own

    def _echoes_question(self, text: str) -> bool:
        """Whether `text` is a question made of the user's question's words (small models sometimes open by asking
        it back)."""
        if not text.rstrip().endswith(("?", "？")):
            return False
        terms = passage_terms(text) - _ANSWER_FILLER
        return not terms or len(terms & self._asked) >= 0.8 * len(terms)

    def _drop_waiting_lead_ins(self) -> None:
        """Drop the lead-ins at the end of the held segments (the blank lines between them stay)."""
        end = len(self._held)
        while end and (self._held[end - 1][1] or not self._held[end - 1][0].strip()):
            end -= 1
        self._held[end:] = [(segment, False) for segment, lead_in in self._held[end:] if not lead_in]

    def _check(self, segment: str) -> str:
        segment = _tidy_opening(segment)
        if is_not_found_reply(segment):
            # The chain decides what the user sees instead: "not found", or the documents' own sentences.
            self.declined = True
            return ""
        text = _MARKER.sub(" ", segment)
        if segment.strip() and (not _WORD.search(text) or self._echoes_question(text)):  # "[1] [2][3]"; "Why X?"
            return ""
        numbers = [int(n) for m in _MARKER.finditer(segment) for n in re.findall(r"\d+", m.group(1))]
        cited = [i for i in numbers if 1 <= i <= len(self.passages)] or range(1, len(self.passages) + 1)
        held = set().union(*(self._terms[i - 1] for i in cited))
        support = claim_support(text.replace(_FENCE, " "), held, self._discounted)
        invented = self.grounded_names and bool(specific_terms(text) - self._known)
        if support is not None and (support < self.min_support or invented):
            self.dropped.append(segment.strip())
            self._drop_waiting_lead_ins()  # what led in to it goes with it
            return ""
        lead_in = segment.rstrip().endswith((":", "："))
        if support is None or lead_in:
            self._held.append((segment, lead_in))
            return ""
        self.kept_claims += 1
        if self.cite_unmarked and not numbers and _FENCE not in segment:
            segment = self._with_marker(segment, text)
        out = "".join(held for held, _ in self._held) + segment
        self._held = []
        return out

    def _with_marker(self, segment: str, text: str) -> str:
        """`segment` citing `[n]`, the passage that alone supports it best (none reaching `min_support`: as it is),
        the marker before its closing punctuation."""
        supports = [claim_support(text, terms, self._discounted) or 0.0 for terms in self._terms]
        best = max(range(len(supports)), key=lambda i: (supports[i], -i), default=None)
        if best is None or supports[best] < self.min_support:
            return segment
        body = segment.rstrip()
        if body.count("[") > body.count("]"):  # "Paris [a": a cut-off bracket, maybe the start of a marker
            return segment
        end = len(body) - 1 if body.endswith((".", "!", "?", "。", "！", "？")) else len(body)
        return f"{body[:end]} [{best + 1}]{body[end:]}{segment[len(body):]}"


# "The passage states that X": small models open with it whatever the prompt says; the answer is X.
# Also "Passage [2] says that X", "[1] states that X", and "states that X" left after a marker that closed the
# segment before it (lowercase only: "Notes that ..." may be a sentence).
_SAYS = "(?:states?|says?|mentions?|explains?|indicates?|notes?) that\\s+"
_PREAMBLE = re.compile(rf"^(\s*)(?:according to (?:the )?passages?(?: \[\d+\])?,\s*|(?:(?:(?:the|this) )?passages? "
                       rf"(?:\[\d+\] )?|\[\d+\] ){_SAYS}|(?-i:{_SAYS}))", re.IGNORECASE)


# "Yes, Yes [1]." / "No, no, ...": told to start with the verdict, small models sometimes say it twice or more
# (within one segment; "No. No, ..." is two segments and is left alone).
_REPEATED_VERDICT = re.compile(r"^(\s*)(yes|no)\b(?:[,.!]?\s+\2\b)+", re.IGNORECASE)


def _tidy_opening(segment: str) -> str:
    """The segment without a doubled verdict or a "the passage states that" preamble."""
    segment = _REPEATED_VERDICT.sub(r"\1\2", segment)
    match = _PREAMBLE.match(segment)
    if not match:
        return segment
    rest = segment[match.end():]
    return match.group(1) + rest[:1].upper() + rest[1:]


_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def _without_extra_blank_lines(text: str, before: str) -> str:
    """`text` with runs of blank lines cut to one, also where it meets the `before` already sent (dropped segments
    leave the blank lines around them behind)."""
    text = _BLANK_LINES.sub("\n\n", text)
    sent = before[len(before.rstrip()):].count("\n")
    lead = re.match(r"[ \t\n]*", text).group()
    if sent and lead.count("\n") + sent > 2:
        text = "\n" * max(0, 2 - sent) + lead.rsplit("\n", 1)[-1] + text[len(lead):]
    return text


_LIST_MARKER = re.compile(r"\s*(?:\d{1,3}|[a-zA-Z])[.)]")
_TRAILING_MARKERS = re.compile(rf"(?:\s*[{_OPEN_SET}][^{_CLOSE_SET}\n]{{0,30}}[{_CLOSE_SET}])+")


class GenerativeReader:
    """Answers from passages with a `TextGenerator`, citing exact spans of the sources.

    `confidence` is the mean word-overlap support of the cited spans (0..1),
    halved when the citation had to be inferred: a generator has no calibrated
    score, so it is comparable within this reader only.
    """

    answer_type: AnswerType = "generated"
    generates = True  # the chain checks, quotes and may overrule what it writes (generators.text.reading.Reader)

    def __init__(
        self,
        generator: TextGenerator,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        max_context_chars: int = 1000,
        min_support: float = 0.5,
        grounded_names: bool = False,
        retry_top_passage: bool = False,
        cite_unmarked: bool = True,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        self.generator = generator
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        # ~1,000 characters (~270 tokens) keep the prompt fast to evaluate on two cores (bench/RESULTS.md).
        self.max_context_chars = max_context_chars
        # An answer sentence whose content words the cited passages hold less than this share of is dropped.
        self.min_support = min_support
        # Drop a segment naming a name, number or code the passages do not hold (see `specific_terms`).
        self.grounded_names = grounded_names
        # A small model handed several passages often declines although the first one answers: when an answer
        # comes out empty (declined, or nothing supported), ask once more with the top passage alone.
        self.retry_top_passage = retry_top_passage
        # Small models often leave a sentence without its [n]: it gets the passage that supports it (SupportGate).
        self.cite_unmarked = cite_unmarked
        self.system_prompt = system_prompt

    def warm_up(self) -> GenerativeReader:
        """Load the generator (a remote API only builds its client)."""
        warm_up = getattr(self.generator, "warm_up", None)
        if warm_up is not None:
            warm_up()
        return self

    def build_prompt(
        self, question: str, passages: Sequence[ReaderPassage], *, history: Sequence[Message] | None = None
    ) -> ReaderPrompt:
        """System instructions, earlier chat turns (if any), then the passages trimmed to what matters and the
        question with what its kind of answer needs.

        Passages are cut to their sentences that share the most words with the question (code blocks whole)
        within `max_context_chars`, the top passage first; a passage with nothing kept is left out, so `[n]`
        numbers only what the model sees. The prompt's passages keep their full text and offsets: citations
        are resolved, and answer sentences checked, against them.
        """
        kept, rendered = trim_passages(question, passages, self.max_context_chars)
        numbered = "\n\n".join(f"[{i}] {text}" for i, text in enumerate(rendered, 1))
        instruction = KIND_INSTRUCTIONS[question_kind(question)]
        if has_cjk(question):
            # Small models answer a Chinese question in English when told what to do in English; an English answer
            # also fails the support check against Chinese passages.
            instruction = f"{instruction} {CHINESE_REPLY}"
        user = f"Passages:\n\n{numbered}\n\nQuestion: {question.strip()}\n\n{instruction}"
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
        retry_top_passage: bool | None = None,
    ) -> ReaderResult:
        """Generate, then check and resolve the citations. `top_k` is unused: every cited span is kept.
        `retry_top_passage` overrides the reader's default for this call."""
        result = self._read_once(question, passages, history)
        if self._retries(result, passages, retry_top_passage):
            retried = self._read_once(question, passages[:1], history, strict=True)
            result = replace(retried, notes=[*result.notes, RETRY_NOTE, *retried.notes])
        return result

    def _read_once(self, question: str, passages: Sequence[ReaderPassage], history: Sequence[Message] | None,
                   *, strict: bool = False) -> ReaderResult:
        prompt = self.build_prompt(question, passages, history=history)
        if not prompt.passages:
            return self._no_passages()
        answer = self.generator.generate(prompt.messages, max_new_tokens=self.max_new_tokens, temperature=self.temperature)
        events = list(self._rewrite([answer], prompt, question, strict=strict))
        result = events[-1]
        assert isinstance(result, ReaderResult)
        return result

    def _retries(self, result: ReaderResult, passages: Sequence[ReaderPassage], retry: bool | None) -> bool:
        retry = self.retry_top_passage if retry is None else retry
        return retry and not result.answer and len(passages) > 1

    def stream(
        self,
        question: str,
        passages: Sequence[ReaderPassage],
        *,
        top_k: int = 3,
        history: Sequence[Message] | None = None,
        retry_top_passage: bool | None = None,
    ) -> Iterator[ReaderEvent]:
        """Text deltas of the rewritten answer as the generator streams, then the `ReaderResult` (always last).

        The deltas joined equal `result.answer`; the fixed "not in the passages" reply is never streamed
        (`result.answer` is "" and a note says the generator declined), so the caller decides what to show.
        Closing the iterator early closes the generator's stream.
        """
        result, shown = None, False
        for event in self._stream_once(question, passages, history):
            if isinstance(event, ReaderResult):
                result = event
            else:
                shown = shown or bool(event)
                yield event
        assert result is not None
        if not shown and self._retries(result, passages, retry_top_passage):  # never after text went out
            notes = [*result.notes, RETRY_NOTE]
            for event in self._stream_once(question, passages[:1], history, strict=True):
                yield replace(event, notes=[*notes, *event.notes]) if isinstance(event, ReaderResult) else event
        else:
            yield result

    def _stream_once(self, question: str, passages: Sequence[ReaderPassage], history: Sequence[Message] | None,
                     *, strict: bool = False) -> Iterator[ReaderEvent]:
        prompt = self.build_prompt(question, passages, history=history)
        if not prompt.passages:
            yield self._no_passages()
            return
        pieces = self.generator.stream(prompt.messages, max_new_tokens=self.max_new_tokens, temperature=self.temperature)
        try:
            yield from self._rewrite(pieces, prompt, question, strict=strict)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    def _no_passages(self) -> ReaderResult:
        return ReaderResult("", self.answer_type, 0.0, [], ["no passages to read"])

    def _rewrite(self, pieces: Iterable[str], prompt: ReaderPrompt, question: str, *,
                 strict: bool = False) -> Iterator[ReaderEvent]:
        """Raw text → the support gate (unsupported segments dropped) → the citation rewriter → deltas. `strict`
        (a second try, the model pressed to answer) judges support on what a sentence adds to the question."""
        gate = SupportGate(prompt.passages, self.min_support, question=question, grounded_names=self.grounded_names,
                           novel_support=strict, cite_unmarked=self.cite_unmarked)
        rewriter = CitationRewriter(len(prompt.passages))
        emitted: list[str] = []
        for piece in itertools.chain(pieces, [None]):  # None: the end, flush the gate and the rewriter
            checked = gate.feed(piece) if piece is not None else gate.finish()
            out = rewriter.feed(checked) if piece is not None else rewriter.feed(checked) + rewriter.finish()
            out = _without_extra_blank_lines(out, "".join(emitted[-8:]))
            if not emitted:
                out = out.lstrip()
            if out:
                emitted.append(out)
                yield out
        yield self._result("".join(emitted), rewriter, prompt.passages, gate)

    def _result(self, answer: str, rewriter: CitationRewriter, passages: Sequence[ReaderPassage],
                gate: SupportGate) -> ReaderResult:
        dropped = [f"dropped {len(gate.dropped)} answer sentence(s) the passages do not support"] if gate.dropped else []
        if gate.declined and gate.kept_claims == 0:
            return ReaderResult("", self.answer_type, 0.0, [], ["the generator replied that the passages do not contain the answer"])
        if not answer or (gate.dropped and gate.kept_claims == 0):
            reason = "no sentence of the answer is supported by the passages" if gate.dropped else \
                "the generator returned no text"
            return ReaderResult("", self.answer_type, 0.0, [], [reason])
        resolution = resolve_citations(rewriter, answer, passages)
        support = [span.score for span in resolution.spans]
        confidence = sum(support) / len(support) if support else 0.0
        if resolution.inferred:
            confidence /= 2
        return ReaderResult(resolution.answer, self.answer_type, round(confidence, 4), resolution.spans,
                            [*resolution.notes, *dropped])
