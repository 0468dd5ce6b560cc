"""Loaders: one real file per format built in the test, bad input, encodings."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest

from ingest.loaders import LoadedDocument, LoadError, load_bytes, load_docx, load_html, load_pdf

# -- builders -----------------------------------------------------------------------------------


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    if title:
        pdf.set_title(title)
    return bytes(pdf.output())


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Quarterly Report", level=1)
    document.add_paragraph("Revenue grew in every region this quarter.")
    document.add_heading("Regional Results", level=2)
    document.add_paragraph("The northern region led with new contracts.")
    table = document.add_table(rows=2, cols=2)
    for (row, col), value in {(0, 0): "Region", (0, 1): "Growth", (1, 0): "Northland", (1, 1): "12 percent"}.items():
        table.cell(row, col).text = value
    document.add_heading("Outlook", level=1)
    document.add_paragraph("Next quarter looks steady.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def load_file(path: Path) -> LoadedDocument:
    return load_bytes(path, path.read_bytes())


@pytest.fixture
def trafilatura_usable():
    """HTML loading needs trafilatura, which imports lxml.html.clean (the `lxml_html_clean` package)."""
    try:
        import trafilatura  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"trafilatura cannot be imported, so no HTML file can be loaded: {exc}")


# -- Markdown, text, reStructuredText -------------------------------------------------------------

MARKDOWN = """# Install Guide

Read this first.

```bash
# this comment is code, not a heading
pip install thing
```

## Requirements

Python 3.11 is needed.

Setext Section
--------------

Body of the setext section.

### Deep Detail

Details.
"""


def test_markdown_headings_are_found_by_offset_and_code_comments_are_not_headings(tmp_path):
    doc = load_file(write(tmp_path, "guide.md", MARKDOWN.encode()))
    assert doc.kind == "markdown"
    assert doc.title == "Install Guide"
    assert [(h.level, h.title) for h in doc.headings] == [
        (1, "Install Guide"),
        (2, "Requirements"),
        (2, "Setext Section"),
        (3, "Deep Detail"),
    ]
    assert all("comment is code" not in h.title for h in doc.headings)
    for heading in doc.headings:
        # The offset is the start of the heading's line in the text.
        assert heading.start == 0 or doc.text[heading.start - 1] == "\n"
        assert doc.text[heading.start :].lstrip("# ").startswith(heading.title)
    assert doc.text == MARKDOWN  # the text is kept verbatim: offsets point into it


def test_markdown_heading_attribute_lists_are_not_part_of_the_title(tmp_path):
    source = "# CORS { #cors }\n\nText.\n\n## Use `CORSMiddleware` { #use-corsmiddleware .note }\n\nMore.\n" \
             "\n## Sets {like this}\n\nBraces that are words stay.\n"
    doc = load_file(write(tmp_path, "cors.md", source.encode()))
    assert doc.title == "CORS"
    assert [h.title for h in doc.headings] == ["CORS", "Use `CORSMiddleware`", "Sets {like this}"]
    assert doc.text == source


def test_markdown_title_is_the_first_h1_not_the_first_heading(tmp_path):
    doc = load_file(write(tmp_path, "notes.md", b"## Preface\n\nSome words.\n\n# Real Title\n\nMore.\n"))
    assert doc.title == "Real Title"
    doc = load_file(write(tmp_path, "flat.md", b"## Only Level Two\n\nSome words.\n"))
    assert doc.title is None


def test_plain_text_is_kept_as_is(tmp_path):
    text = "First line of the notes.\n\n# not a heading in plain text\nLast line.\n"
    doc = load_file(write(tmp_path, "notes.txt", text.encode()))
    assert doc.kind == "text"
    assert doc.text == text
    assert doc.headings == [] and doc.pages == [] and doc.title is None


RST = """=============
Project Guide
=============

Intro paragraph.

Installation
============

Run the installer.

Options
-------

Some options.

Usage
=====

Use it.
"""


def test_rst_overlined_and_underlined_titles_become_headings_with_levels(tmp_path):
    doc = load_file(write(tmp_path, "guide.rst", RST.encode()))
    assert doc.kind == "rst"
    assert doc.title == "Project Guide"
    # Levels follow the order adornment styles first appear: overlined "=", underlined "=", "-".
    assert [(h.level, h.title) for h in doc.headings] == [
        (1, "Project Guide"),
        (2, "Installation"),
        (3, "Options"),
        (2, "Usage"),
    ]
    overlined = doc.headings[0]
    assert overlined.start == 0 and doc.text.startswith("=============\nProject Guide")
    for heading in doc.headings[1:]:
        assert doc.text[heading.start :].startswith(heading.title + "\n")


# -- HTML -------------------------------------------------------------------------------------------

ARTICLE_PAGE = """<!DOCTYPE html>
<html><head><title>Glacier Guide</title><script>var trackingScriptVariable = 1;</script></head>
<body>
<header><div class="logo">SiteLogoBrand</div>
  <ul><li><a href="/">HeaderHomeLink</a></li><li><a href="/about">HeaderAboutLink</a></li></ul></header>
<nav class="menu"><ul><li><a href="/a">NavAlphaItem</a></li><li><a href="/b">NavBetaItem</a></li>
  <li><a href="/c">NavGammaItem</a></li></ul></nav>
<main><article>
<h1>How glaciers carve valleys</h1>
<p>Glaciers are slow rivers of ice that form where snow accumulates faster than it melts over many years.
As they flow downhill under their own weight, they pluck rocks from the bedrock beneath them.</p>
<h2>U-shaped valleys</h2>
<p>The rocks frozen into the base of the glacier scrape the valley floor and walls, widening a V-shaped
river valley into the characteristic U shape that geologists recognise around the world.</p>
<p>Hanging valleys, cirques and moraines are further landforms left behind when the ice finally retreats
at the end of an ice age.</p>
<h2>Measuring flow</h2>
<p>Scientists measure glacier flow with stakes drilled into the ice and with satellite radar, finding
speeds from a few metres to several kilometres per year.</p>
</article></main>
<footer><p>FooterCopyrightNotice 2024 Example Corp</p>
  <ul><li><a href="/privacy">FooterPrivacyLink</a></li><li><a href="/terms">FooterTermsLink</a></li></ul></footer>
</body></html>
"""


def test_html_keeps_the_article_and_drops_navigation_and_footer(tmp_path, trafilatura_usable):
    doc = load_file(write(tmp_path, "page.html", ARTICLE_PAGE.encode()))
    assert doc.kind == "html"
    for article_text in ("slow rivers of ice", "characteristic U shape", "satellite radar"):
        assert article_text in doc.text
    for chrome in ("NavAlphaItem", "NavGammaItem", "FooterCopyrightNotice", "FooterPrivacyLink",
                   "HeaderHomeLink", "trackingScriptVariable"):
        assert chrome not in doc.text
    assert [(h.level, h.title) for h in doc.headings] == [
        (1, "How glaciers carve valleys"),
        (2, "U-shaped valleys"),
        (2, "Measuring flow"),
    ]
    for heading in doc.headings:
        assert doc.text[heading.start :].lstrip("# ").startswith(heading.title)
    assert doc.title in ("Glacier Guide", "How glaciers carve valleys")


def test_tiny_html_page_falls_back_to_its_visible_text(tmp_path, trafilatura_usable):
    page = (b"<html><head><title>Tiny</title><style>.hiddenStyleRule{color:red}</style>"
            b"<script>var hiddenScript = 1;</script></head>"
            b"<body><p>Hello tiny world.</p></body></html>")
    doc = load_file(write(tmp_path, "tiny.htm", page))
    assert doc.kind == "html"
    assert "Hello tiny world." in doc.text
    assert "hiddenStyleRule" not in doc.text and "hiddenScript" not in doc.text


def test_html_fallback_strips_page_chrome():
    from ingest.loaders import _html_text_fallback

    text = _html_text_fallback(
        "<html><body><header>TopBar</header><nav>MenuItem</nav><script>code()</script>"
        "<div>Visible line one</div><p>Visible line two</p><footer>BottomBar</footer></body></html>"
    )
    assert text == "Visible line one\nVisible line two"


def test_html_without_readable_text_raises(tmp_path, trafilatura_usable):
    with pytest.raises(LoadError, match="no readable text"):
        load_html(b"<html><head><script>var onlyScript = 1;</script></head><body></body></html>")


# -- PDF ----------------------------------------------------------------------------------------------

PDF_PAGES = [
    "Alpha page talks about volcanoes and basaltic lava flows.",
    "Bravo page describes honey bees and their waggle dance.",
    "Charlie page explains ocean tides and the pull of the Moon.",
]


def test_pdf_pages_are_located_by_span(tmp_path):
    doc = load_file(write(tmp_path, "three.pdf", make_pdf(PDF_PAGES, title="Three Topics")))
    assert doc.kind == "pdf"
    assert doc.title == "Three Topics"
    assert [p.page for p in doc.pages] == [1, 2, 3]
    for span, page_text in zip(doc.pages, PDF_PAGES, strict=True):
        assert page_text in doc.text[span.start : span.end]
        for other in PDF_PAGES:
            if other != page_text:
                assert other not in doc.text[span.start : span.end]
    assert all(a.end <= b.start for a, b in zip(doc.pages, doc.pages[1:]))
    assert doc.pages[-1].end == len(doc.text)


def test_pdf_with_only_blank_pages_has_no_text():
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    with pytest.raises(LoadError, match="no readable text"):
        load_pdf(bytes(pdf.output()))


def test_pdf_with_an_empty_owner_only_password_still_loads():
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(PDF_PAGES[:2]))))
    writer.encrypt(user_password="", owner_password="owner-secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    doc = load_pdf(buffer.getvalue())
    assert PDF_PAGES[1] in doc.text[doc.pages[1].start : doc.pages[1].end]


# -- DOCX ----------------------------------------------------------------------------------------------


def test_docx_headings_levels_offsets_and_table_text(tmp_path):
    doc = load_file(write(tmp_path, "report.docx", make_docx()))
    assert doc.kind == "docx"
    assert doc.title == "Quarterly Report"
    assert [(h.level, h.title) for h in doc.headings] == [
        (1, "Quarterly Report"),
        (2, "Regional Results"),
        (1, "Outlook"),
    ]
    for heading in doc.headings:
        assert doc.text[heading.start :].startswith(heading.title)
    for cell in ("Region", "Growth", "Northland", "12 percent"):
        assert cell in doc.text
    assert "Revenue grew in every region" in doc.text
    assert doc.text.index("Northland") < doc.text.index("Outlook")  # the table sits in document order


def test_structure_round_trips_through_stored_form(tmp_path):
    doc = load_file(write(tmp_path, "three.pdf", make_pdf(PDF_PAGES)))
    again = LoadedDocument.from_stored(doc.text, doc.kind, doc.title, doc.structure())
    assert again == doc
    doc = load_file(write(tmp_path, "guide.md", MARKDOWN.encode()))
    assert LoadedDocument.from_stored(doc.text, doc.kind, doc.title, doc.structure()) == doc


# -- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n" + bytes(random.Random(1).randrange(256) for _ in range(2048)),
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R",
    ],
    ids=["random-bytes", "truncated-header"],
)
def test_corrupt_pdf_raises_load_error(tmp_path, data):
    with pytest.raises(LoadError, match="(?i)corrupt|unreadable"):
        load_file(write(tmp_path, "broken.pdf", data))


def test_truncated_real_pdf_raises_load_error():
    data = make_pdf(PDF_PAGES)
    with pytest.raises(LoadError, match="(?i)corrupt|unreadable"):
        load_pdf(data[: len(data) // 3])


def test_encrypted_pdf_raises_load_error_asking_for_a_password(tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(PDF_PAGES))))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(LoadError, match="encrypted") as caught:
        load_file(write(tmp_path, "locked.pdf", buffer.getvalue()))
    assert "password" in str(caught.value)


def test_binary_file_named_txt_raises_load_error(tmp_path):
    png_like = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4
    with pytest.raises(LoadError, match="binary"):
        load_file(write(tmp_path, "picture.txt", png_like))


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.rst", "empty.html"])
@pytest.mark.parametrize("data", [b"", b"  \n\t\r\n  \n"], ids=["empty", "whitespace"])
def test_empty_or_whitespace_file_raises_load_error(request, tmp_path, name, data):
    if name.endswith(".html"):
        request.getfixturevalue("trafilatura_usable")
    with pytest.raises(LoadError, match="empty"):
        load_file(write(tmp_path, name, data))


def test_docx_that_is_not_a_zip_raises_load_error(tmp_path):
    with pytest.raises(LoadError, match="(?i)corrupt DOCX"):
        load_file(write(tmp_path, "broken.docx", b"this is plain text pretending to be a Word file"))


def _rezip(data: bytes, change) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, change(info.filename, source.read(info)))
    return out.getvalue()


def test_docx_with_a_broken_xml_part_raises_load_error():
    data = _rezip(make_docx(), lambda name, body: b"<w:document><unclosed" if name == "word/document.xml" else body)
    with pytest.raises(LoadError, match="(?i)corrupt DOCX"):
        load_docx(data)


def test_docx_with_a_damaged_compressed_member_raises_load_error():
    data = bytearray(make_docx())
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = archive.getinfo("word/document.xml")
    # Local header: 30 bytes + name + extra, then the deflated bytes; scramble the middle of them.
    name_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    body = info.header_offset + 30 + name_len + extra_len
    rng = random.Random(7)
    for i in range(body + 10, body + min(info.compress_size, 200)):
        data[i] = rng.randrange(256)
    with pytest.raises(LoadError, match="(?i)corrupt DOCX"):
        load_docx(bytes(data))


def test_unsupported_extension_raises_load_error():
    with pytest.raises(LoadError, match="unsupported") as caught:
        load_bytes(Path("table.xls"), b"some bytes")
    assert ".xls" in str(caught.value)
    with pytest.raises(LoadError, match="unsupported"):
        load_bytes(Path("Makefile"), b"all:\n\techo hi\n")


def test_extension_is_matched_case_insensitively():
    assert load_bytes(Path("README.MD"), b"# Upper\n\nText.\n").kind == "markdown"


# -- encodings and newlines --------------------------------------------------------------------------------

FRENCH = "Le café était très naïf à Noël, déjà vu. " * 6
CHINESE = (
    "今天天气很好，我们一起去公园散步吧。北京是中国的首都，有很多历史悠久的名胜古迹。"
    "学习一门新的语言需要耐心和坚持，每天练习才能进步。"
) * 4


@pytest.mark.parametrize(
    ("text", "encoding"),
    [(FRENCH, "latin-1"), (FRENCH, "cp1252"), (CHINESE, "gbk")],
    ids=["french-latin1", "french-cp1252", "chinese-gbk"],
)
def test_non_utf8_text_is_decoded_to_the_original_string(tmp_path, text, encoding):
    data = text.encode(encoding)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the test really exercises detection
    assert load_file(write(tmp_path, "legacy.txt", data)).text == text


def test_utf8_bom_is_dropped(tmp_path):
    doc = load_file(write(tmp_path, "bom.md", "\ufeff# Titre\n\nÉté.\n".encode()))
    assert doc.text == "# Titre\n\nÉté.\n"
    assert doc.title == "Titre" and doc.headings[0].start == 0


def test_crlf_and_cr_newlines_are_normalised(tmp_path):
    doc = load_file(write(tmp_path, "windows.md", b"# Title\r\n\r\nLine one.\r\nLine two.\r\n\r\n## Next\r\n\r\nOld mac\rline.\r\n"))
    assert "\r" not in doc.text
    assert doc.text == "# Title\n\nLine one.\nLine two.\n\n## Next\n\nOld mac\nline.\n"
    assert [h.title for h in doc.headings] == ["Title", "Next"]
    assert doc.text[doc.headings[1].start :].startswith("## Next")
