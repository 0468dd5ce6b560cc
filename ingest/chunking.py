"""Chunking with langchain-text-splitters, sized in the embedder's tokens, with exact offsets.

Documents with headings (Markdown, reStructuredText, DOCX, HTML) are first cut
at their headings, then each section is split recursively; other text is split
recursively. Each chunk keeps `start`/`end` into the document text, so
`text[start:end] == chunk.text` always holds.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from ingest.loaders import LoadedDocument

# Sentence ends of Chinese and English sit between paragraph breaks and spaces.
_PROSE_SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", " ", ""]
# 2: offsets of repeated text, setext/reST heading-only sections merge; 3: the heading path is indexed with the text;
# 4: Markdown tables split at rows only, the header row indexed with every part
CHUNKER_VERSION = "4"


@dataclass(frozen=True)
class Chunk:
    seq: int
    start: int
    end: int
    text: str
    heading: str | None  # "Title > Section > Subsection"
    page: int | None  # first page of the chunk (PDF)

    @property
    def indexed_text(self) -> str:
        return indexed_text(self.text, self.heading)


def indexed_text(text: str, heading: str | None) -> str:
    """What is embedded, keyword-indexed and reranked for a chunk: its heading path, then its text. A chunk deep
    inside a section rarely names its page's topic ("Add the middleware..." under "CORS"); its headings do."""
    return f"{heading}\n\n{text}" if heading else text


class Chunker:
    """Split a `LoadedDocument` into chunks of at most `chunk_tokens` tokens."""

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        *,
        chunk_tokens: int = 200,
        overlap_tokens: int = 32,
        max_heading_level: int = 3,
        tokenizer_name: str = "",
    ) -> None:
        if chunk_tokens < 8:
            raise ValueError("chunk_tokens must be at least 8")
        if not 0 <= overlap_tokens < chunk_tokens:
            raise ValueError("overlap_tokens must be at least 0 and below chunk_tokens")
        self.count_tokens = count_tokens
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.max_heading_level = max_heading_level
        self.tokenizer_name = tokenizer_name
        self._splitters: dict[str, object] = {}

    @property
    def fingerprint(self) -> str:
        key = f"{CHUNKER_VERSION}|{self.tokenizer_name}|{self.chunk_tokens}|{self.overlap_tokens}|{self.max_heading_level}"
        return "chunk:" + hashlib.sha1(key.encode()).hexdigest()[:12]

    def _splitter(self, kind: str):
        from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

        if kind not in self._splitters:
            if kind in ("markdown", "html"):
                language = RecursiveCharacterTextSplitter.get_separators_for_language(Language.MARKDOWN)
                # Headings were cut already; keep markdown's block separators, then prose ones.
                separators = [s for s in language if "#" not in s and s not in ("\n\n", "\n", " ", "")]
                separators += [re.escape(s) for s in _PROSE_SEPARATORS]
            elif kind == "rst":
                language = RecursiveCharacterTextSplitter.get_separators_for_language(Language.RST)
                separators = [s for s in language if s not in ("\n\n", "\n", " ", "")]
                separators += [re.escape(s) for s in _PROSE_SEPARATORS]
            else:
                separators = [re.escape(s) for s in _PROSE_SEPARATORS]
            self._splitters[kind] = RecursiveCharacterTextSplitter(
                separators=separators,
                is_separator_regex=True,
                keep_separator="end",
                chunk_size=self.chunk_tokens,
                chunk_overlap=self.overlap_tokens,
                length_function=self.count_tokens,
                strip_whitespace=True,
            )
        return self._splitters[kind]

    def _sections(self, doc: LoadedDocument) -> list[tuple[int, int]]:
        """(start, end) spans cut at headings up to `max_heading_level`; a heading with no body joins the next."""
        cuts = sorted({h.start for h in doc.headings if h.level <= self.max_heading_level and h.start > 0})
        bounds = [0, *cuts, len(doc.text)]
        spans = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
        titles = {h.start: h.title for h in doc.headings}
        merged: list[tuple[int, int]] = []
        pending_start: int | None = None
        for start, end in spans:
            body = _after_heading(doc.text[start:end], titles.get(start))
            if pending_start is None:
                pending_start = start
            if body.strip() or end == len(doc.text):
                merged.append((pending_start, end))
                pending_start = None
        return merged

    def split(self, doc: LoadedDocument) -> list[Chunk]:
        text = doc.text
        splitter = self._splitter(doc.kind)
        heading_at = _HeadingPaths(doc)
        page_starts = [p.start for p in doc.pages]
        chunks: list[Chunk] = []

        def page_at(start: int) -> int | None:
            return doc.pages[bisect.bisect_right(page_starts, start) - 1].page if doc.pages else None

        for part_start, part_end, is_table in self._parts(doc):
            if is_table:
                for start, end, header in self._table_rows(text, part_start, part_end):
                    path = heading_at(start)
                    # A chunk that starts below the header row carries it where its heading path goes: what
                    # is embedded, keyword-indexed and reranked names the columns of every row.
                    context = f"{path}\n{header}" if header and path else header or path
                    chunks.append(Chunk(len(chunks), start, end, text[start:end], context, page_at(start)))
                continue
            sec_start, sec_end = part_start, part_end
            section = text[sec_start:sec_end]
            cursor = 0
            covered = 0  # end of the previous piece
            for piece in splitter.split_text(section):
                found = section.find(piece, cursor)
                # Repeated text (code lines, table rows, page footers) can also match inside the
                # previous piece; a piece overlaps the previous one by at most `overlap_tokens`.
                while 0 <= found < covered and (
                    found + len(piece) <= covered or self.count_tokens(section[found:covered]) > self.overlap_tokens
                ):
                    found = section.find(piece, found + 1)
                if found < 0:
                    found = section.find(piece, cursor)
                if found < 0:
                    found = section.find(piece)
                if found < 0:
                    raise RuntimeError("text splitter returned text that is not in the document")
                cursor = found + 1
                covered = max(covered, found + len(piece))
                start = sec_start + found
                chunks.append(Chunk(len(chunks), start, start + len(piece), piece, heading_at(start), page_at(start)))
        return chunks

    def _parts(self, doc: LoadedDocument) -> list[tuple[int, int, bool]]:
        """The sections cut at headings, each cut again around its Markdown tables: (start, end, is_table)."""
        parts: list[tuple[int, int, bool]] = []
        for sec_start, sec_end in self._sections(doc):
            cursor = sec_start
            for match in _TABLE.finditer(doc.text, sec_start, sec_end):
                if match.start() > cursor and doc.text[cursor : match.start()].strip():
                    parts.append((cursor, match.start(), False))
                parts.append((match.start(), match.end(), True))
                cursor = match.end()
            if cursor < sec_end and (doc.text[cursor:sec_end].strip() or cursor == sec_start):
                parts.append((cursor, sec_end, False))
        return parts

    def _table_rows(self, text: str, start: int, end: int) -> list[tuple[int, int, str | None]]:
        """A Markdown table as runs of whole rows within the token budget: (start, end, header) where header is
        the header and rule lines for a run that does not begin with them (None for the first run)."""
        lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text[start:end])]
        lines = [(start + a, start + b) for a, b in lines]
        header = text[lines[0][0] : lines[1][1]]
        runs: list[tuple[int, int, str | None]] = []
        run_start, run_tokens = lines[0][0], self.count_tokens(header)
        for line_start, line_end in lines[2:]:
            tokens = self.count_tokens(text[line_start:line_end]) + 1
            # A row that does not fit starts the next run; the first run keeps at least one row under its header,
            # and a row longer than the budget is a run of its own.
            if run_tokens + tokens > self.chunk_tokens and line_start != lines[2][0]:
                runs.append((run_start, _rstrip_end(text, run_start, line_start), header if runs else None))
                run_start, run_tokens = line_start, 0
            run_tokens += tokens
        runs.append((run_start, lines[-1][1], header if runs else None))
        return runs


# A Markdown table: a header row, a rule row (|---|:--:|) and any body rows, each a line starting with "|".
_TABLE = re.compile(r"(?m)^\|[^\n]*\|[ \t]*\n\|(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*(?:\n\|[^\n]*\|[ \t]*)*$")


def _rstrip_end(text: str, start: int, end: int) -> int:
    """`end` moved left past the whitespace before it (not before `start`)."""
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


# A line of one repeated punctuation character: a setext or reStructuredText underline.
_UNDERLINE = re.compile(r"[ \t]*([=\-~^\"'`#*+:.<>_])\1*[ \t]*")


def _after_heading(section: str, title: str | None) -> str:
    """The text of a section after its heading: the title's line(s) and an underline right below them."""
    at = section.find(title) if title else -1
    if at < 0:
        return section.split("\n", 1)[1] if "\n" in section else ""
    rest = section[at + len(title) :].partition("\n")[2]  # past the title line (and ATX closing #s)
    line, _, after = rest.partition("\n")
    return after if _UNDERLINE.fullmatch(line) else rest


class _HeadingPaths:
    """Heading path ("A > B > C") in force at any offset of a document."""

    def __init__(self, doc: LoadedDocument) -> None:
        self.starts: list[int] = []
        self.paths: list[str] = []
        stack: list[tuple[int, str]] = []
        for heading in sorted(doc.headings, key=lambda h: h.start):
            while stack and stack[-1][0] >= heading.level:
                stack.pop()
            stack.append((heading.level, heading.title))
            self.starts.append(heading.start)
            self.paths.append(" > ".join(title for _, title in stack))

    def __call__(self, offset: int) -> str | None:
        i = bisect.bisect_right(self.starts, offset) - 1
        return self.paths[i] if i >= 0 else None
