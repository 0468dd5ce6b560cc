"""End to end through `rag ask`: answers from a scanned PDF page, a table cell and a slide, cited with their page."""

from __future__ import annotations

import io
import json

import pytest
from typer.testing import CliRunner

from rag.cli import app
from tests.ingest.test_formats import make_pptx
from tests.ingest.test_ocr import ENGLISH, page_image, scanned_pdf

runner = CliRunner()


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("documents")
    from fpdf import FPDF

    cover = FPDF()
    cover.add_page()
    cover.set_font("Helvetica", size=12)
    cover.multi_cell(0, 10, "Cover letter. Please find the scanned invoice on the next page.")
    cover_bytes = bytes(cover.output())
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(cover_bytes)).pages[0])
    writer.add_page(PdfReader(io.BytesIO(scanned_pdf(page_image(ENGLISH)))).pages[0])
    with open(folder / "invoice.pdf", "wb") as handle:
        writer.write(handle)
    rows = ["zone,carrier,rate"] + [f"{zone},{carrier},{rate}" for zone, carrier, rate in [
        ("North", "Fjord Freight", "4.20 EUR"), ("South", "Sunline", "5.10 EUR"), ("East", "Dawn Cargo", "6.30 EUR"),
        ("West", "Harbour Haul", "7.40 EUR")]]
    (folder / "rates.csv").write_text("\n".join(rows) + "\n")
    (folder / "deck.pptx").write_bytes(make_pptx())
    index_dir = tmp_path_factory.mktemp("index")
    result = runner.invoke(app, ["ingest", str(folder), "--index", str(index_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ingested"] == 3 and not report["failed"], report
    return index_dir


def ask(index, question: str) -> dict:
    result = runner.invoke(app, ["ask", question, "--index", str(index), "--mode", "extractive", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize(("question", "source", "pages", "expected"), [
    ("What is the total due on scanned invoice 2291?", "invoice.pdf", [2], "1,234.50"),  # OCR of page 2
    ("Which carrier ships to the East zone?", "rates.csv", [], "Dawn Cargo"),  # a table cell
    ("Where is the new office?", "deck.pptx", [1], "Lisbon"),  # a slide's notes
])
def test_answers_from_scans_tables_and_slides_cite_their_page(index, question, source, pages, expected):
    response = ask(index, question)
    assert not response["abstained"], response
    top = response["citations"][0]
    assert top["source"].endswith(source) and top["pages"] == pages
    assert expected in response["answer"] + top["text"]


@pytest.mark.slow
def test_the_cli_prints_the_page_of_a_citation(index):
    printed = runner.invoke(app, ["ask", "Where is the new office?", "--index", str(index), "--mode", "extractive"])
    assert printed.exit_code == 0 and "deck.pptx, p. 1" in printed.stdout
