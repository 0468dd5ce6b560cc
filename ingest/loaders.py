"""Loaders: bytes of a file → its text, with headings and pages located by character offset.

Every loader returns the text that chunks and citations index into, so a
chunk's `start`/`end` always point into exactly the string stored for its
document. Problems with a file raise `LoadError` with a reason a person can act on.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path


class LoadError(Exception):
    """A file that cannot be turned into text; the message says why."""


@dataclass(frozen=True)
class Heading:
    start: int  # offset of the heading line in the text
    level: int
    title: str


@dataclass(frozen=True)
class PageSpan:
    page: int  # 1-based
    start: int
    end: int


@dataclass(frozen=True)
class LoadedDocument:
    text: str
    kind: str
    title: str | None = None
    headings: list[Heading] = field(default_factory=list)
    pages: list[PageSpan] = field(default_factory=list)

    def structure(self) -> dict:
        """Headings and pages as plain data, so chunking can be redone from stored text."""
        return {
            "headings": [asdict(h) for h in self.headings],
            "pages": [asdict(p) for p in self.pages],
        }

    @classmethod
    def from_stored(cls, text: str, kind: str, title: str | None, structure: dict) -> LoadedDocument:
        return cls(
            text=text,
            kind=kind,
            title=title,
            headings=[Heading(**h) for h in structure.get("headings", [])],
            pages=[PageSpan(**p) for p in structure.get("pages", [])],
        )


Loader = Callable[[bytes], LoadedDocument]


# -- text decoding --------------------------------------------------------------------
def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 BOM
        return False
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return control > len(sample) * 0.1


def decode_text(data: bytes) -> str:
    """Bytes → str: UTF-8 (with or without BOM), else the encoding charset-normalizer detects (Latin-1, GBK, …)."""
    if not data.strip():
        raise LoadError("empty file: no text to index")
    if _looks_binary(data):
        raise LoadError("binary content, not text (wrong file extension?)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = _decode_legacy(data)
    return normalize_newlines(text)


# Among encodings that fit the bytes equally well, the ones most text is written in.
_COMMON_ENCODINGS = ("gb18030", "cp1252", "latin_1", "big5", "shift_jis", "euc_kr", "cp1251", "cp1250")


def _decode_legacy(data: bytes) -> str:
    from charset_normalizer import from_bytes
    from charset_normalizer.utils import is_multi_byte_encoding

    matches = list(from_bytes(data))
    if not matches or not is_multi_byte_encoding(matches[0].encoding):
        # Its mess detector scores ordinary French as suspicious cp1252 ("déjà", "Noël")
        # and prefers Baltic or Central European code pages that read "très" as "trčs";
        # a cp1252 reading within its default mess threshold (0.2), at least as coherent, wins.
        western = next((m for m in matches if m.encoding == "cp1252"), None)
        western = western or from_bytes(data, cp_isolation=["cp1252"], threshold=0.25).best()
        if western is not None and western.chaos <= 0.2 and (not matches or western.coherence >= matches[0].coherence):
            return str(western)
    if not matches:
        raise LoadError("undecodable text: not UTF-8 and no other encoding fits")
    best = matches[0]
    # charset-normalizer scores the Western code pages alike on short text and
    # may pick cp1250 for French or German; break such ties by prevalence.
    ties = [m for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence]

    def rank(match) -> int:
        return _COMMON_ENCODINGS.index(match.encoding) if match.encoding in _COMMON_ENCODINGS else len(_COMMON_ENCODINGS)

    return str(min(ties, key=rank))


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer("\n", text)]


# -- formats ----------------------------------------------------------------------------
# "## Title { #anchor .class }": an attribute list (MkDocs, Pandoc) is markup, not part of the title.
_ATTRIBUTE_LIST = re.compile(r"\s*\{\s*[#.:][^{}]*\}\s*$")


def markdown_headings(text: str) -> list[Heading]:
    """ATX and setext headings, found by a CommonMark parser (so `#` lines in code blocks are not headings)."""
    from markdown_it import MarkdownIt

    starts = _line_starts(text)
    tokens = MarkdownIt("commonmark").parse(text)
    headings = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            title = tokens[i + 1].content.strip() if i + 1 < len(tokens) else ""
            headings.append(Heading(starts[token.map[0]], int(token.tag[1]), _ATTRIBUTE_LIST.sub("", title)))
    return headings


def load_markdown(data: bytes) -> LoadedDocument:
    text = decode_text(data)
    headings = markdown_headings(text)
    title = next((h.title for h in headings if h.level == 1), None)
    return LoadedDocument(text, "markdown", title, headings)


def load_text(data: bytes) -> LoadedDocument:
    return LoadedDocument(decode_text(data), "text")


_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")


def rst_headings(text: str) -> list[Heading]:
    """Section titles: a text line underlined (optionally overlined) by one repeated punctuation character.

    Levels follow the order in which adornment styles first appear, as docutils assigns them.
    """
    lines = text.split("\n")
    starts = _line_starts(text)
    styles: list[tuple[str, bool]] = []
    headings = []
    i = 1
    while i < len(lines):
        under = lines[i]
        title = lines[i - 1]
        match = _RST_ADORNMENT.match(under)
        if match and title.strip() and not _RST_ADORNMENT.match(title) and len(under.rstrip()) >= len(title.rstrip()):
            overlined = i >= 2 and lines[i - 2].rstrip() == under.rstrip()
            style = (match.group(1), overlined)
            if style not in styles:
                styles.append(style)
            line = i - 2 if overlined else i - 1
            headings.append(Heading(starts[line], styles.index(style) + 1, title.strip()))
            i += 2
            continue
        i += 1
    return headings


def load_rst(data: bytes) -> LoadedDocument:
    text = decode_text(data)
    headings = rst_headings(text)
    title = headings[0].title if headings else None
    return LoadedDocument(text, "rst", title, headings)


def load_html(data: bytes) -> LoadedDocument:
    """Main content only (trafilatura drops navigation, footers, ads), as Markdown so headings survive."""
    import trafilatura

    html = decode_text(data)
    extracted = trafilatura.extract(
        html, output_format="markdown", include_formatting=True, include_links=False,
        include_images=False, include_tables=True, favor_recall=True,
    )
    metadata = trafilatura.extract_metadata(html)
    title = metadata.title if metadata is not None else None
    if not extracted or not extracted.strip():
        extracted = _html_text_fallback(html)
    text = normalize_newlines(extracted).strip()
    if not text:
        raise LoadError("HTML page with no readable text")
    headings = markdown_headings(text)
    return LoadedDocument(text, "html", title or next((h.title for h in headings), None), headings)


def _html_text_fallback(html: str) -> str:
    """For pages too small for trafilatura's content detection: visible text minus page chrome."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "aside", "noscript", "form"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").split("\n"))
    return "\n".join(line for line in lines if line)


def load_pdf(data: bytes) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF: a password is needed to read it")
        parts: list[str] = []
        pages: list[PageSpan] = []
        offset = 0
        for number, page in enumerate(reader.pages, start=1):
            page_text = normalize_newlines(page.extract_text() or "").strip()
            if parts:
                offset += 2  # the "\n\n" joining pages
            pages.append(PageSpan(number, offset, offset + len(page_text)))
            parts.append(page_text)
            offset += len(page_text)
    except LoadError:
        raise
    except FileNotDecryptedError:
        raise LoadError("encrypted PDF: a password is needed to read it") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise LoadError(f"corrupt or unreadable PDF: {exc}") from None
    text = "\n\n".join(parts)
    if not text.strip():
        raise LoadError("PDF has no extractable text (scanned images? OCR is not supported)")
    title = None
    try:
        title = (reader.metadata or {}).get("/Title") or None
    except (PdfReadError, ValueError, KeyError, TypeError):
        pass
    return LoadedDocument(text, "pdf", str(title) if title else None, pages=pages)


_DOCX_HEADING = re.compile(r"^(?:Heading\s*(\d)|Title)$", re.IGNORECASE)


def load_docx(data: bytes) -> LoadedDocument:
    import zipfile
    import zlib

    from docx import Document
    from docx.table import Table
    from lxml.etree import XMLSyntaxError

    try:
        document = Document(io.BytesIO(data))
    # A damaged zip member fails to inflate (zlib.error); a damaged part fails to parse.
    except (zipfile.BadZipFile, zlib.error, XMLSyntaxError, KeyError, ValueError) as exc:
        raise LoadError(f"corrupt DOCX (not a valid Word file): {exc}") from None
    blocks: list[str] = []
    headings: list[Heading] = []
    offset = 0
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in item.rows]
            block = "\n".join(r for r in rows if r.strip(" |"))
            style = None
        else:
            block = item.text.strip()
            style = item.style.name if item.style is not None else None
        if not block:
            continue
        if blocks:
            offset += 2
        match = _DOCX_HEADING.match(style or "")
        if match:
            headings.append(Heading(offset, int(match.group(1) or 1), block))
        blocks.append(block)
        offset += len(block)
    text = "\n\n".join(blocks)
    if not text.strip():
        raise LoadError("DOCX has no text")
    title = document.core_properties.title or next((h.title for h in headings), None)
    return LoadedDocument(text, "docx", title, headings)


LOADERS: dict[str, Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".rst": load_rst,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
}


def loader_for(path: Path) -> Loader | None:
    return LOADERS.get(path.suffix.lower())


def load_bytes(path: Path, data: bytes) -> LoadedDocument:
    loader = loader_for(path)
    if loader is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}; supported: {', '.join(sorted(LOADERS))}")
    return loader(data)
