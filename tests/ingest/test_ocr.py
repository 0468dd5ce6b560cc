"""OCR of scanned PDF pages and pictures of text (RapidOCR, models from its wheel), English and Chinese."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from generators.media.ocr import OcrLine, join_rows, reading_order
from ingest.loaders import LoadError, load_bytes, load_pdf, reporting_pages, text_layer_is_usable

ENGLISH = ["Scanned invoice 2291", "The total due is 1,234.50 EUR.", "Payment is due within 30 days."]
CHINESE = ["扫描的发票", "应付总额为一千二百元。", "请在三十天内付款。"]


def font(size: int, chinese: bool = False):
    from PIL import ImageFont

    if chinese:
        import cvttf_NotoSansCJK_Regular

        return ImageFont.truetype(str(Path(cvttf_NotoSansCJK_Regular.__file__).parent / "NotoSansCJKtc-Regular.otf"),
                                  size)
    return ImageFont.truetype("DejaVuSans.ttf", size) if _has_dejavu() else ImageFont.load_default(size)


def _has_dejavu() -> bool:
    from PIL import ImageFont

    try:
        ImageFont.truetype("DejaVuSans.ttf", 10)
    except OSError:
        return False
    return True


def page_image(lines: list[str], *, chinese: bool = False):
    """An A4-ish page at 150 dpi with `lines` of 14 pt text, paragraphs apart."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1240, 600), "white")
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((100, 80 + number * 140), line, fill="black", font=font(40, chinese))
    return image


def scanned_pdf(*pages) -> bytes:  # noqa: ANN002 - PIL images
    """A PDF whose pages are only images (no text layer), as a scanner writes it."""
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", resolution=150, save_all=True, append_images=list(pages[1:]))
    return buffer.getvalue()


def character_error_rate(found: str, expected: str) -> float:
    from difflib import SequenceMatcher

    a, b = "".join(found.split()), "".join(expected.split())
    matched = sum(block.size for block in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())
    return 1 - matched / max(len(b), 1)


def test_reading_order_joins_a_row_and_breaks_paragraphs():
    lines = [OcrLine("world", 0.9, 200, 10, 300, 40), OcrLine("Hello", 0.9, 10, 12, 180, 40),
             OcrLine("next line", 0.9, 10, 50, 200, 80), OcrLine("new paragraph", 0.9, 10, 200, 250, 230)]
    assert join_rows(reading_order(lines)) == "Hello world\nnext line\n\nnew paragraph"


def test_garbage_text_layers_are_not_trusted():
    assert text_layer_is_usable("Payment is due within 30 days.")
    assert text_layer_is_usable("应付总额为一千二百元。")
    assert not text_layer_is_usable("")
    assert not text_layer_is_usable("(cid:12)(cid:7)(cid:44)(cid:9) (cid:3)(cid:18)")
    assert not text_layer_is_usable("\ue000\ue001\ue002\ue003 \ue004\ue005")
    assert not text_layer_is_usable("~~~ ### ||| *** ---")


@pytest.mark.slow
def test_scanned_pdf_pages_are_read_by_ocr_in_english_and_chinese():
    english, chinese = page_image(ENGLISH), page_image(CHINESE, chinese=True)
    doc = load_pdf(scanned_pdf(english, chinese))
    assert [p.page for p in doc.pages] == [1, 2] and not doc.problems
    first = doc.text[doc.pages[0].start : doc.pages[0].end]
    second = doc.text[doc.pages[1].start : doc.pages[1].end]
    assert character_error_rate(first, "\n".join(ENGLISH)) <= 0.05, first
    assert character_error_rate(second, "\n".join(CHINESE)) <= 0.10, second
    assert first.index("invoice") < first.index("total") < first.index("Payment")  # reading order


@pytest.mark.slow
def test_a_pdf_with_text_pages_and_a_scanned_page_keeps_both():
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Typed cover page about invoices.")
    pdf.add_page()
    buffer = io.BytesIO()
    page_image(ENGLISH).save(buffer, "PNG")
    pdf.image(buffer, x=0, y=0, w=210)
    doc = load_pdf(bytes(pdf.output()))
    assert [p.page for p in doc.pages] == [1, 2]
    assert doc.text[doc.pages[0].start : doc.pages[0].end] == "Typed cover page about invoices."
    assert "1,234.50" in doc.text[doc.pages[1].start : doc.pages[1].end]


@pytest.mark.slow
def test_images_are_documents_and_tiff_frames_are_pages():
    png = io.BytesIO()
    page_image(ENGLISH).save(png, "PNG")
    doc = load_bytes(Path("scan.png"), png.getvalue())
    assert doc.kind == "image" and "30 days" in doc.text

    tiff = io.BytesIO()
    page_image(ENGLISH[:1]).save(tiff, "TIFF", save_all=True, append_images=[page_image(ENGLISH[1:2])])
    pages_read = []
    with reporting_pages(lambda done, total: pages_read.append((done, total))):
        doc = load_bytes(Path("scan.tiff"), tiff.getvalue())
    assert [p.page for p in doc.pages] == [1, 2]
    first, second = (doc.text[p.start : p.end] for p in doc.pages)
    assert "invoice 2291" in first and "1,234.50" not in first  # each frame's own text, not the last frame twice
    assert "1,234.50" in second
    assert pages_read == [(1, 2), (2, 2)]


@pytest.mark.slow
def test_a_picture_without_text_and_a_broken_image_get_clear_errors():
    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(blank, "PNG")
    with pytest.raises(LoadError, match="no readable text"):
        load_bytes(Path("blank.png"), blank.getvalue())
    with pytest.raises(LoadError, match="corrupt or unreadable image"):
        load_bytes(Path("broken.jpg"), b"\xff\xd8\xff not a jpeg")
    with pytest.raises(LoadError, match="no readable text"):
        load_pdf(scanned_pdf(Image.new("RGB", (600, 800), "white")))
