"""Tables, sheets, slides and e-books: Markdown tables with exact offsets, pages for slides, zip bombs refused."""

from __future__ import annotations

import io
import zipfile

import pytest

from ingest.chunking import Chunker
from ingest.loaders import (
    LoadError,
    pdf_pages_with_paths,
    load_bytes,
    load_csv,
    load_docx,
    load_pdf,
    markdown_table,
    reporting_pages,
)
from pathlib import Path


def words(text: str) -> int:
    return len(text.split())


def test_markdown_table_escapes_pipes_and_drops_empty_rows_and_columns():
    table = markdown_table([["Name", "Price", None], ["a|b", 3.5, ""], [None, None, None], ["c\nd", 4, None]])
    assert table.splitlines() == ["| Name | Price |", "|---|---|", "| a\\|b | 3.5 |", "| c d | 4 |"]
    assert markdown_table([[None], [""]]) == ""


def test_csv_becomes_one_table_and_its_rows_are_chunked_with_the_header(tmp_path):
    rows = ["sku;name;price"] + [f"{i};widget {i};{i}.50" for i in range(80)]
    doc = load_csv("\n".join(rows).encode())
    assert doc.kind == "csv" and doc.text.startswith("| sku | name | price |\n|---|---|---|\n| 0 | widget 0 | 0.50 |")
    chunks = Chunker(words, chunk_tokens=60, overlap_tokens=5).split(doc)
    assert len(chunks) > 3
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        lines = chunk.text.splitlines()
        assert all(line.startswith("|") and line.endswith("|") for line in lines)  # whole rows only
    assert chunks[0].heading is None and chunks[0].text.startswith("| sku |")
    for chunk in chunks[1:]:  # later parts carry the header where retrieval sees it
        assert chunk.heading == "| sku | name | price |\n|---|---|---|"
        assert chunk.indexed_text.startswith("| sku | name | price |")
    rows_seen = [line for chunk in chunks for line in chunk.text.splitlines() if "widget" in line]
    assert len(rows_seen) == 80  # no row lost, none repeated


def test_xlsx_sheets_are_headings_with_tables(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Prices"
    book.active.append(["Item", "Price"])
    book.active.append(["Apple", 1.25])
    stock = book.create_sheet("Stock")
    stock.append(["Item", "Count"])
    stock.append(["Apple", 40])
    buffer = io.BytesIO()
    book.save(buffer)
    doc = load_bytes(Path("book.xlsx"), buffer.getvalue())
    assert doc.kind == "xlsx"
    assert [h.title for h in doc.headings] == ["Prices", "Stock"]
    assert "| Apple | 1.25 |" in doc.text and "| Apple | 40 |" in doc.text
    for heading in doc.headings:
        assert doc.text[heading.start :].startswith(f"## {heading.title}")


def make_pptx() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Quarterly results"
    first.placeholders[1].text = "Revenue grew in every region."
    first.notes_slide.notes_text_frame.text = "Mention the new Lisbon office."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Headcount"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for row, values in enumerate([["Team", "People"], ["Support", "17"]]):
        for column, value in enumerate(values):
            table.cell(row, column).text = value
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def test_pptx_slides_are_pages_with_title_text_tables_and_notes():
    doc = load_bytes(Path("deck.pptx"), make_pptx())
    assert doc.kind == "pptx"
    assert [h.title for h in doc.headings] == ["Slide 1: Quarterly results", "Slide 2: Headcount"]
    assert [p.page for p in doc.pages] == [1, 2]
    first = doc.text[doc.pages[0].start : doc.pages[0].end]
    second = doc.text[doc.pages[1].start : doc.pages[1].end]
    assert "Revenue grew in every region." in first and "Notes: Mention the new Lisbon office." in first
    assert "| Support | 17 |" in second and "Lisbon" not in second


def make_epub() -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("id-1")
    book.set_title("Field guide")
    book.set_language("en")
    chapters = []
    for number, (title, body) in enumerate([("Bees", "<p>Bees dance to point at flowers.</p>"),
                                            ("Tides", "<p>Tides follow the Moon.</p><table><tr><th>Place</th>"
                                                      "<th>Range</th></tr><tr><td>Fundy</td><td>16 m</td></tr>"
                                                      "</table>")], start=1):
        chapter = epub.EpubHtml(title=title, file_name=f"c{number}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{title}</h1>{body}</body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.spine = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    buffer = io.BytesIO()
    epub.write_epub(buffer, book)
    return buffer.getvalue()


def test_epub_chapters_in_reading_order_with_headings_and_tables():
    doc = load_bytes(Path("guide.epub"), make_epub())
    assert doc.kind == "epub" and doc.title == "Field guide"
    assert [h.title for h in doc.headings] == ["Bees", "Tides"]
    assert doc.text.index("Bees dance") < doc.text.index("Tides follow")
    assert "| Fundy | 16 m |" in doc.text


def test_docx_tables_are_markdown_tables():
    from docx import Document

    document = Document()
    document.add_paragraph("Opening hours")
    table = document.add_table(rows=2, cols=2)
    for row, values in enumerate([["Day", "Hours"], ["Monday", "9-17"]]):
        for column, value in enumerate(values):
            table.cell(row, column).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    doc = load_docx(buffer.getvalue())
    assert "| Day | Hours |\n|---|---|\n| Monday | 9-17 |" in doc.text


def test_pdf_ruled_tables_become_markdown_tables_on_their_page():
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for number in (1, 2):
        pdf.add_page()
        pdf.multi_cell(0, 10, f"Page {number} is plain prose about shipping.")
    pdf.add_page()
    pdf.cell(0, 10, "Shipping rates by zone", new_x="LMARGIN", new_y="NEXT")
    with pdf.table() as table:
        for values in [["Zone", "Rate"], ["North", "4.20 EUR"], ["South", "5.10 EUR"]]:
            row = table.row()
            for value in values:
                row.cell(value)
    pdf.cell(0, 10, "Rates change every January.", new_x="LMARGIN", new_y="NEXT")
    data = bytes(pdf.output())

    assert pdf_pages_with_paths(data, 3) == [3]  # where the table finder looks: the page that draws lines
    pages_read = []
    with reporting_pages(lambda done, total: pages_read.append((done, total))):
        doc = load_pdf(data)
    third = doc.text[doc.pages[2].start : doc.pages[2].end]
    assert "| Zone | Rate |\n|---|---|\n| North | 4.20 EUR |\n| South | 5.10 EUR |" in third
    assert third.index("Shipping rates") < third.index("| Zone") < third.index("Rates change")
    assert [p.page for p in doc.pages] == [1, 2, 3]
    assert pages_read == [(1, 3), (2, 3), (3, 3)]


def zip_bomb(inner_name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(inner_name, b"\0" * (300 * 1024 * 1024))
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "inner"), [("bomb.docx", "word/document.xml"), ("bomb.xlsx", "xl/workbook.xml"),
                                             ("bomb.pptx", "ppt/presentation.xml")])
def test_zip_bombs_are_refused_before_they_are_inflated(name, inner):
    data = zip_bomb(inner)
    assert len(data) < 1024 * 1024
    with pytest.raises(LoadError, match="zip bomb"):
        load_bytes(Path(name), data)


def test_corrupt_office_files_get_a_clear_error():
    for name in ["broken.xlsx", "broken.pptx", "broken.epub"]:
        with pytest.raises(LoadError, match="corrupt"):
            load_bytes(Path(name), b"PK\x03\x04 not really a zip")


def test_html_tables_stay_tables_and_are_split_at_rows():
    from ingest.loaders import load_html

    rows = "".join(f"<tr><td>Zone {i}</td><td>Carrier {i}</td><td>{i}.10 EUR</td></tr>" for i in range(40))
    html = (f"<html><body><article><h1>Shipping</h1><p>Our carriers and what they charge per parcel in each zone."
            f"</p><table><tr><th>Zone</th><th>Carrier</th><th>Rate</th></tr>{rows}</table>"
            f"<p>Rates change every January, and are announced in December.</p></article></body></html>")
    doc = load_bytes(Path("rates.html"), html.encode())
    assert "| Zone 7 | Carrier 7 | 7.10 EUR |" in doc.text
    chunks = Chunker(words, chunk_tokens=50, overlap_tokens=5).split(doc)
    table_chunks = [c for c in chunks if "Carrier 3" in c.text or "Carrier 30" in c.text]
    assert table_chunks and all("Zone | Carrier | Rate" in c.indexed_text for c in table_chunks)
    assert sum(c.text.count("EUR |") for c in chunks) == 40
