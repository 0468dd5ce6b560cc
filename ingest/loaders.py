"""Loaders: bytes of a file → its text, with headings and pages located by character offset.

Every loader returns the text that chunks and citations index into, so a
chunk's `start`/`end` always point into exactly the string stored for its
document. Problems with a file raise `LoadError` with a reason a person can act on.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class LoadError(Exception):
    """A file that cannot be turned into text; the message says why."""


PageCallback = Callable[[int, int], None]  # (pages read, pages in the document)
_page_callback: ContextVar[PageCallback | None] = ContextVar("page_callback", default=None)


@contextmanager
def reporting_pages(callback: PageCallback | None) -> Iterator[None]:
    """Within this block, loaders of paged documents (PDF, TIFF) call `callback` after each page they read:
    a 10,000-page PDF or a scanned book shows its progress while it is being read."""
    token = _page_callback.set(callback)
    try:
        yield
    finally:
        _page_callback.reset(token)


def _page_read(done: int, total: int) -> None:
    callback = _page_callback.get()
    if callback is not None:
        callback(done, total)


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
    # Parts that could not be read while the rest went in ("page 3: OCR failed: ..."), for the ingest report.
    problems: list[str] = field(default_factory=list, compare=False)

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


class TextBuilder:
    """A document's text assembled block by block, with the offsets of its headings and pages."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.headings: list[Heading] = []
        self.pages: list[PageSpan] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def add(self, block: str) -> int | None:
        """Append a block (blocks are separated by a blank line); its offset in the text, None for an empty
        block (skipped)."""
        block = block.strip()
        if not block:
            return None
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        start = self._length
        self._parts.append(block)
        self._length += len(block)
        return start

    def heading(self, level: int, title: str) -> None:
        """A Markdown heading line, recorded as a heading of the document."""
        title = " ".join(title.split())
        if title:
            self.headings.append(Heading(self.add(f"{'#' * level} {title}"), level, title))

    @contextmanager
    def page(self, number: int) -> Iterator[None]:
        """Blocks added inside belong to page (or slide) `number`."""
        start = self._length + (2 if self._parts else 0)
        yield
        self.pages.append(PageSpan(number, min(start, self._length), self._length))

    def document(self, kind: str, title: str | None, *, problems: list[str] | None = None) -> LoadedDocument:
        return LoadedDocument(self.text, kind, title, self.headings, self.pages, problems or [])


def markdown_table(rows: Sequence[Sequence[object]]) -> str:
    """Rows (the first one the header) as a Markdown table; empty rows and empty trailing columns are left out."""
    cells = [[_table_cell(value) for value in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return ""
    width = max(max((i + 1 for i, value in enumerate(row) if value), default=0) for row in cells)
    cells = [(row + [""] * width)[:width] for row in cells]
    header, body = cells[0], cells[1:]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _table_cell(value: object) -> str:
    if value is None:
        return ""
    return " ".join(str(value).split()).replace("|", "\\|")


# A ZIP-based office file (DOCX, XLSX, PPTX, EPUB) may claim any size inflated: check before reading it.
MAX_UNZIPPED_BYTES = 1 << 30
MAX_ZIP_RATIO = 200


def check_zip(data: bytes, kind: str) -> None:
    """`LoadError` for a file that is not a ZIP, or that inflates past 1 GiB or 200× its size (a zip bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise LoadError(f"corrupt {kind} (not a valid ZIP container): {exc}") from None
    if total > MAX_UNZIPPED_BYTES or total > MAX_ZIP_RATIO * max(len(data), 1) + (1 << 20):
        raise LoadError(f"{kind} would inflate to {total / 2**20:,.0f} MB from {len(data) / 2**10:,.0f} KB: "
                        "refused as a possible zip bomb")


def ocr_image(image) -> str:  # noqa: ANN001 - a PIL image
    """The text of an image, in reading order (generators.media.ocr: RapidOCR, models in its wheel)."""
    from generators.media.ocr import shared_reader

    return shared_reader().run(image).text


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
    """Each page's text layer (pypdf), its tables as Markdown (pdfplumber), and OCR for a page whose text layer
    is missing or garbage (rendered with pypdfium2). A page that fails is reported; the others go in."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF: a password is needed to read it")
        layers = [normalize_newlines(page.extract_text() or "").strip() for page in reader.pages]
    except LoadError:
        raise
    except FileNotDecryptedError:
        raise LoadError("encrypted PDF: a password is needed to read it") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise LoadError(f"corrupt or unreadable PDF: {exc}") from None
    problems: list[str] = []
    tables = _pdf_page_tables(data, layers, problems)
    builder = TextBuilder()
    with _PageRenderer(data) as renderer:
        for number, layer in enumerate(layers, start=1):
            if number in tables:
                page_text = tables[number]
            elif text_layer_is_usable(layer):
                page_text = layer
            else:
                page_text = _ocr_pdf_page(renderer, number, len(layers), problems)
            with builder.page(number):
                builder.add(page_text)
            _page_read(number, len(layers))
    if not builder.text.strip():
        reason = "; ".join(problems[:3]) if problems else "no text layer and OCR found no text"
        raise LoadError(f"PDF has no readable text ({reason})")
    title = None
    try:
        title = (reader.metadata or {}).get("/Title") or None
    except (PdfReadError, ValueError, KeyError, TypeError):
        pass
    return builder.document("pdf", str(title) if title else None, problems=problems)


# A text layer is garbage when few of its characters are letters, digits or CJK: fonts without a Unicode map
# give "(cid:12)" runs or private-use symbols.
_READABLE = re.compile(r"[^\W_]", re.UNICODE)
_CID = re.compile(r"\(cid:\d+\)")


def text_layer_is_usable(text: str) -> bool:
    """Does a page's text layer hold real text (not nothing, not symbols from a font without a Unicode map)?"""
    stripped = re.sub(r"\s+", "", text)
    if len(stripped) < 3:
        return False
    readable = _READABLE.findall(_CID.sub("", stripped))
    readable = [c for c in readable if not 0xE000 <= ord(c) <= 0xF8FF]  # private use: glyph ids, not text
    return len(readable) / len(stripped) >= 0.5


OCR_DPI = 200  # page rendering for OCR: 200 dpi keeps body text at ~28 px a line, what PP-OCR reads best


class _PageRenderer:
    """Pages of one PDF as images for OCR; the document is opened (by pypdfium2) on the first page asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._document = None

    def __enter__(self) -> _PageRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._document is not None:
            self._document.close()

    def render(self, number: int):  # noqa: ANN201 - a PIL image
        import pypdfium2

        if self._document is None:
            self._document = pypdfium2.PdfDocument(self.data)
        page = self._document[number - 1]
        try:
            return page.render(scale=OCR_DPI / 72, grayscale=True).to_pil()
        finally:
            page.close()


def _ocr_pdf_page(renderer: _PageRenderer, number: int, pages: int, problems: list[str]) -> str:
    """The OCR text of page `number` (1-based), or "" with the reason noted in `problems`."""
    try:
        log.info("OCR of PDF page %s of %s", number, pages)
        text = ocr_image(renderer.render(number))
    except Exception as exc:  # noqa: BLE001 - one bad page must not lose the document
        problems.append(f"page {number}: OCR failed: {type(exc).__name__}: {exc}")
        return ""
    if not text.strip():
        problems.append(f"page {number}: no text layer and OCR found no text")
    return text


def _pdf_page_tables(data: bytes, layers: list[str], problems: list[str]) -> dict[int, str]:
    """Page number → the page's text with its tables as Markdown tables, for the pages that hold ruled tables."""
    try:
        import pdfplumber
    except ImportError:
        return {}
    # pdfplumber takes ~20 ms a page even where there is nothing to find; a ruled table is drawn with paths,
    # so only pages that hold a path (and a usable text layer) are looked at: a 10,000-page report in seconds.
    candidates = [n for n in pdf_pages_with_paths(data, len(layers)) if text_layer_is_usable(layers[n - 1])]
    found: dict[int, str] = {}
    if not candidates:
        return found
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for number in candidates:
                page = pdf.pages[number - 1]
                try:
                    tables = [t for t in page.find_tables() if len(t.rows) >= 2]
                    if tables:
                        found[number] = _page_with_tables(page, tables)
                except Exception as exc:  # noqa: BLE001 - the page keeps its plain text layer
                    problems.append(f"page {number}: tables not read ({type(exc).__name__}: {exc})")
                finally:
                    page.close()
    except Exception as exc:  # noqa: BLE001 - pypdf read the file; its text layer stands
        problems.append(f"tables not read: {type(exc).__name__}: {exc}")
    return found


def pdf_pages_with_paths(data: bytes, page_count: int) -> list[int]:
    """Numbers (1-based) of the pages that draw any vector path (lines, rectangles): where a ruled table can be.

    Every page when pypdfium2 cannot tell (the table finder then looks at each page, as it would anyway).
    """
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError:
        return list(range(1, page_count + 1))
    try:
        numbers = []
        for index in range(len(document)):
            page = document[index]
            try:
                if next(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=3), None) is not None:
                    numbers.append(index + 1)
            finally:
                page.close()
        return numbers
    finally:
        document.close()


def _page_with_tables(page, tables) -> str:  # noqa: ANN001
    """The page's text top to bottom: text between tables as pdfplumber extracts it, each table as Markdown."""
    blocks: list[str] = []
    top = 0.0
    for table in sorted(tables, key=lambda t: t.bbox[1]):
        x0, table_top, x1, table_bottom = table.bbox
        if table_top > top:
            above = page.crop((0, top, page.width, table_top)).extract_text() or ""
            blocks.append(normalize_newlines(above).strip())
        blocks.append(markdown_table(table.extract()))
        top = max(top, table_bottom)
    if top < page.height:
        blocks.append(normalize_newlines(page.crop((0, top, page.width, page.height)).extract_text() or "").strip())
    return "\n\n".join(b for b in blocks if b)


_DOCX_HEADING = re.compile(r"^(?:Heading\s*(\d)|Title)$", re.IGNORECASE)


def load_docx(data: bytes) -> LoadedDocument:
    import zlib

    from docx import Document
    from docx.table import Table
    from lxml.etree import XMLSyntaxError

    check_zip(data, "DOCX")
    try:
        document = Document(io.BytesIO(data))
    # A damaged zip member fails to inflate (zlib.error); a damaged part fails to parse.
    except (zipfile.BadZipFile, zlib.error, XMLSyntaxError, KeyError, ValueError) as exc:
        raise LoadError(f"corrupt DOCX (not a valid Word file): {exc}") from None
    builder = TextBuilder()
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            builder.add(markdown_table([[cell.text for cell in row.cells] for row in item.rows]))
            continue
        start = builder.add(item.text)
        # Paragraphs styled "Heading N" (or "Title") are the document's headings, as they are in Word.
        match = _DOCX_HEADING.match(item.style.name if item.style is not None else "")
        if match and start is not None:
            builder.headings.append(Heading(start, int(match.group(1) or 1), item.text.strip()))
    if not builder.text.strip():
        raise LoadError("DOCX has no text")
    title = document.core_properties.title or next((h.title for h in builder.headings), None)
    return builder.document("docx", title)


def load_csv(data: bytes) -> LoadedDocument:
    """A CSV (or TSV) file as one Markdown table; the first row is the header."""
    text = decode_text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise LoadError(f"malformed CSV: {exc}") from None
    table = markdown_table(rows)
    if not table:
        raise LoadError("CSV file with no cells")
    return LoadedDocument(table, "csv")


MAX_SHEET_CELLS = 2_000_000


def load_xlsx(data: bytes) -> LoadedDocument:
    """Each sheet as a heading and a Markdown table of its values (formulas as last computed)."""
    check_zip(data, "XLSX")
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged workbook
        raise LoadError(f"corrupt XLSX (not a readable workbook): {type(exc).__name__}: {exc}") from None
    builder = TextBuilder()
    cells = 0
    try:
        for sheet in workbook.worksheets:
            rows = []
            for row in sheet.iter_rows(values_only=True):
                cells += len(row)
                if cells > MAX_SHEET_CELLS:
                    raise LoadError(f"workbook has more than {MAX_SHEET_CELLS:,} cells; split it or export CSV")
                rows.append(row)
            table = markdown_table(rows)
            if table:
                builder.heading(2, sheet.title)
                builder.add(table)
    finally:
        workbook.close()
    if not builder.text:
        raise LoadError("XLSX workbook with no cells")
    return builder.document("xlsx", None)


def load_pptx(data: bytes) -> LoadedDocument:
    """Each slide's title, text, tables and speaker notes; slide numbers are the pages."""
    check_zip(data, "PPTX")
    from pptx import Presentation

    try:
        presentation = Presentation(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-pptx raises many kinds for a damaged file
        raise LoadError(f"corrupt PPTX (not a readable presentation): {type(exc).__name__}: {exc}") from None
    builder = TextBuilder()
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None and title_shape.has_text_frame else ""
        with builder.page(number):
            builder.heading(2, f"Slide {number}: {title}" if title else f"Slide {number}")
            for block in _slide_blocks(slide.shapes, skip=title_shape):
                builder.add(block)
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.text.strip()
                if notes:
                    builder.add(f"Notes: {notes}")
    if not builder.text:
        raise LoadError("PPTX presentation with no slides")
    core_title = presentation.core_properties.title
    return builder.document("pptx", core_title or None)


def _slide_blocks(shapes, skip=None) -> Iterator[str]:  # noqa: ANN001 - python-pptx shape collections
    """Text frames and tables of `shapes` top to bottom, left to right (groups opened)."""
    ordered = sorted(shapes, key=lambda shape: (shape.top or 0, shape.left or 0))
    for shape in ordered:
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        if shape.shape_type is not None and shape.shape_type == 6:  # MSO_SHAPE_TYPE.GROUP
            yield from _slide_blocks(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            yield markdown_table([[cell.text for cell in row.cells] for row in shape.table.rows])
        elif shape.has_text_frame:
            yield shape.text_frame.text


def load_epub(data: bytes) -> LoadedDocument:
    """The chapters of an EPUB in reading (spine) order, their headings, paragraphs, lists and tables."""
    check_zip(data, "EPUB")
    import ebooklib
    from ebooklib import epub

    try:
        book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    except Exception as exc:  # noqa: BLE001 - ebooklib raises many kinds for a damaged book
        raise LoadError(f"corrupt EPUB (not a readable book): {type(exc).__name__}: {exc}") from None
    builder = TextBuilder()
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        html_blocks(item.get_content(), builder)
    if not builder.text:
        raise LoadError("EPUB book with no text")
    titles = book.get_metadata("DC", "title")
    return builder.document("epub", titles[0][0] if titles else None)


def html_blocks(html: bytes | str, builder: TextBuilder) -> None:
    """Headings, paragraphs, list items, preformatted text and tables of an HTML page, in document order."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    body = soup.body or soup
    for element in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "table", "blockquote"]):
        if element.find_parent(["table", "li", "blockquote", "pre"]) is not None:
            continue  # read with its container
        if element.name == "table":
            builder.add(markdown_table([[cell.get_text(" ", strip=True) for cell in row.find_all(["th", "td"])]
                                        for row in element.find_all("tr")]))
        elif element.name[0] == "h" and element.name[1:].isdigit():
            builder.heading(int(element.name[1]), element.get_text(" ", strip=True))
        elif element.name == "pre":
            builder.add(element.get_text())
        else:
            builder.add(element.get_text(" ", strip=True))


def load_image(data: bytes) -> LoadedDocument:
    """The text of a picture of text by OCR; each frame of a multi-page TIFF is a page."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Image.DecompressionBombError as exc:
        raise LoadError(f"image too large to read safely: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise LoadError(f"corrupt or unreadable image: {exc}") from None
    builder = TextBuilder()
    problems: list[str] = []
    frames = getattr(image, "n_frames", 1)
    # The iterator seeks the one image object to each frame in turn: read a frame before taking the next.
    for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
        try:
            text = ocr_image(frame.convert("RGB"))
        except Exception as exc:  # noqa: BLE001 - one bad frame must not lose the others
            problems.append(f"page {number}: OCR failed: {type(exc).__name__}: {exc}")
            continue
        finally:
            _page_read(number, frames)
        if frames > 1:
            with builder.page(number):
                builder.add(text)
        else:
            builder.add(text)
    if not builder.text.strip():
        raise LoadError("image with no readable text (OCR found none)")
    return builder.document("image", None, problems=problems)


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
    ".csv": load_csv,
    ".tsv": load_csv,
    ".xlsx": load_xlsx,
    ".pptx": load_pptx,
    ".epub": load_epub,
    ".png": load_image,
    ".jpg": load_image,
    ".jpeg": load_image,
    ".tif": load_image,
    ".tiff": load_image,
}


def loader_for(path: Path) -> Loader | None:
    return LOADERS.get(path.suffix.lower())


def load_bytes(path: Path, data: bytes) -> LoadedDocument:
    loader = loader_for(path)
    if loader is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}; supported: {', '.join(sorted(LOADERS))}")
    return loader(data)
