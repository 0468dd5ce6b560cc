"""OCR of scanned pages: character error rate and pages per second, English and Chinese, and a peer.

Pages are made here: prose from the FastAPI docs (English, and the Chinese translation), Markdown
stripped, set in 11 pt type on A4 and rendered to images at --scan-dpi (what the scanner gave), then
saved as image-only PDFs. `rag ingest`'s PDF loader reads them (pypdfium2 renders each page at
--ocr-dpi, RapidOCR reads it) and the text of each page is compared with the text that was set:

    CER = 1 − matched characters / characters set, whitespace ignored (difflib's matching blocks)

Peer, when it is installed: `ocrmypdf` + tesseract on the same PDFs (`--peer`), the text then taken
from its text layer by pypdf.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/ocr.py --pages 5 --scan-dpi 300 --ocr-dpi 200
    HF_HUB_OFFLINE=1 .venv/bin/python bench/ocr.py --pages 5 --scan-dpi 150 --ocr-dpi 150 [--peer]

Another engine with RapidOCR's API, e.g. rapidocrlite's bundled Indra models (not a dependency: see
bench/RESULTS.md for why), put ahead of the installed `rapidocr` on the path:

    .venv/bin/pip install --no-deps --pre --target /tmp/ocr-lite rapidocrlite==5.0.0a15
    PYTHONPATH=/tmp/ocr-lite HF_HUB_OFFLINE=1 .venv/bin/python bench/ocr.py --pages 4 --scan-dpi 150 \
        --ocr-dpi 150 --engine-params '{"Det.model_type": "lite", "Rec.model_type": "lite"}'
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from difflib import SequenceMatcher
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOCS = ROOT.parent / "shared" / "data" / "corpus" / "fastapi-docs" / "docs"


def prose(folder: Path, limit_chars: int) -> str:
    """Paragraphs of plain prose from Markdown pages: no code, tables, headings, links or markup."""
    out: list[str] = []
    total = 0
    for path in sorted(folder.glob("*.md")):
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
        for paragraph in text.split("\n\n"):
            line = " ".join(paragraph.split())
            if not line or line[0] in "#|/<{!*-/>" or "{*" in line or len(line) < 40:
                continue
            line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)
            line = re.sub(r"[`*_]+", "", line)
            out.append(line)
            total += len(line)
            if total >= limit_chars:
                return "\n".join(out)
    return "\n".join(out)


def font(chinese: bool, size: int):
    from PIL import ImageFont

    if chinese:
        import cvttf_NotoSansCJK_Regular

        return ImageFont.truetype(str(Path(cvttf_NotoSansCJK_Regular.__file__).parent / "NotoSansCJKtc-Regular.otf"),
                                  size)
    return ImageFont.truetype("DejaVuSans.ttf", size)


def set_pages(text: str, pages: int, dpi: int, chinese: bool) -> list[tuple[object, str]]:
    """Images of A4 pages of `text` in 11 pt type, and the text each holds."""
    from PIL import Image, ImageDraw

    width, height = int(8.27 * dpi), int(11.69 * dpi)
    margin, size = int(0.8 * dpi), int(11 / 72 * dpi)
    face = font(chinese, size)
    line_height = int(size * 1.5)
    words = list(text.replace("\n", "")) if chinese else text.split()
    made: list[tuple[object, str]] = []
    position = 0
    for _ in range(pages):
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        lines: list[str] = []
        y = margin
        while y + line_height < height - margin and position < len(words):
            line = ""
            while position < len(words):
                candidate = line + words[position] if chinese or not line else f"{line} {words[position]}"
                if draw.textlength(candidate, font=face) > width - 2 * margin and line:
                    break
                line = candidate
                position += 1
            draw.text((margin, y), line, fill=0, font=face)
            lines.append(line)
            y += line_height
        made.append((image, "\n".join(lines)))
    return made


def image_pdf(images: list, dpi: int) -> bytes:
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return buffer.getvalue()


def cer(found: str, expected: str) -> float:
    a, b = "".join(found.split()), "".join(expected.split())
    matched = sum(block.size for block in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())
    return 1 - matched / max(len(b), 1)


def ours(pdf: bytes, ocr_dpi: int, engine_params: dict) -> tuple[list[str], float]:
    import ingest.loaders as loaders
    from generators.media import ocr

    if engine_params:  # the loader asks generators.media.ocr.shared_reader for its engine at each page
        reader = ocr.ImageTextReader(engine_params=engine_params)
        ocr.shared_reader = lambda: reader
    ocr.shared_reader().warm_up()  # the engine loads once per process: not a per-page cost
    loaders.OCR_DPI = ocr_dpi
    started = time.perf_counter()
    doc = loaders.load_pdf(pdf)
    seconds = time.perf_counter() - started
    return [doc.text[p.start : p.end] for p in doc.pages], seconds


def peer(pdf: bytes, language: str) -> tuple[list[str], float] | None:
    if shutil.which("ocrmypdf") is None or shutil.which("tesseract") is None:
        return None
    from pypdf import PdfReader

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
        src.write_bytes(pdf)
        started = time.perf_counter()
        subprocess.run(["ocrmypdf", "-q", "-l", language, "--output-type", "pdf", str(src), str(out)], check=True)
        seconds = time.perf_counter() - started
        return [page.extract_text() or "" for page in PdfReader(out).pages], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--scan-dpi", type=int, default=300)
    parser.add_argument("--ocr-dpi", type=int, default=200)
    parser.add_argument("--peer", action="store_true", help="also ocrmypdf + tesseract, when installed")
    parser.add_argument("--engine-params", type=json.loads, default={},
                        help='RapidOCR params as JSON, e.g. \'{"Det.model_type": "lite", "Rec.model_type": "lite"}\' '
                             "with rapidocrlite on PYTHONPATH (see bench/RESULTS.md)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for language, folder, chinese, tesseract in [("English", DOCS / "en" / "docs", False, "eng"),
                                                  ("Chinese", DOCS / "zh" / "docs", True, "chi_sim")]:
        pages = set_pages(prose(folder, 40_000), args.pages, args.scan_dpi, chinese)
        pdf = image_pdf([image for image, _ in pages], args.scan_dpi)
        expected = [text for _, text in pages]
        name = "rapidocr (ours)" + (f" {json.dumps(args.engine_params)}" if args.engine_params else "")
        systems = {name: ours(pdf, args.ocr_dpi, args.engine_params)}
        if args.peer:
            result = peer(pdf, tesseract)
            if result is not None:
                systems["ocrmypdf + tesseract"] = result
        for system, (texts, seconds) in systems.items():
            rates = [cer(found, want) for found, want in zip(texts, expected, strict=True)]
            rows.append({"language": language, "system": system, "pages": len(expected),
                         "characters": sum(len("".join(t.split())) for t in expected),
                         "cer": round(sum(rates) / len(rates), 4), "worst_page_cer": round(max(rates), 4),
                         "pages_per_s": round(len(expected) / seconds, 2)})
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    print(f"\nscan {args.scan_dpi} dpi, OCR at {args.ocr_dpi} dpi")
    print("| language | system | pages | characters | CER | worst page | pages/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['language']} | {r['system']} | {r['pages']} | {r['characters']} | {r['cer']:.2%} | "
              f"{r['worst_page_cer']:.2%} | {r['pages_per_s']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
