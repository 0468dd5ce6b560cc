"""A long PDF through the loader: seconds per 1,000 pages and peak memory, with the page count it reads.

The PDF is made here with fpdf2: N pages of prose from the FastAPI docs (2,400 characters each) (a text layer on every page, as a
long report or manual has), and a ruled table on every 50th page. It is then read by `rag ingest`'s PDF
loader (`ingest.loaders.load_pdf`: pypdf text layers, pdfplumber tables, OCR where a page has no text) in
a child process, whose peak resident memory is reported (`ru_maxrss`).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/big_pdf.py --pages 1000 10000
    HF_HUB_OFFLINE=1 .venv/bin/python bench/big_pdf.py --pages 10000 --ingest   # also the whole `rag ingest`

With --ingest, `rag ingest --json` then takes the PDF into a new index (offline default embedder, sentence
vectors on): seconds, chunks and the peak resident memory of that process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the project: bench/ingest.py is not the ingest package


def make_pdf(pages: int, path: Path) -> None:
    from fpdf import FPDF

    from ocr import DOCS, prose  # bench/ocr.py: paragraphs of plain prose from the docs

    paragraphs = prose(DOCS / "en" / "docs", 400_000).split("\n")
    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=10)
    cursor = 0
    for number in range(1, pages + 1):
        pdf.add_page()
        if number % 50 == 0:
            with pdf.table(col_widths=(30, 60, 60)) as table:
                for row in [("setting", "default", "meaning"), ("workers", str(number), "worker processes"),
                            ("timeout", f"{number % 97} s", "request timeout")]:
                    cells = table.row()
                    for cell in row:
                        cells.cell(cell)
        text = "\n\n".join(paragraphs[(cursor + i) % len(paragraphs)] for i in range(12))[:2400]
        cursor += 12
        pdf.multi_cell(0, 5, text.encode("latin-1", "replace").decode("latin-1"))
    pdf.output(str(path))


def load(path: str) -> None:
    """Child process: load the PDF, print what came out as JSON."""
    import ingest.loaders as loaders

    started = time.perf_counter()
    document = loaders.load_pdf(Path(path).read_bytes())
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": round(seconds, 2), "pages_read": len(document.pages),
                      "characters": len(document.text), "problems": len(document.problems),
                      "tables": document.text.count("\n|---"),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, nargs="+", default=[1000])
    parser.add_argument("--ingest", action="store_true", help="also time `rag ingest` of each PDF")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load(args.load)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for pages in args.pages:
            path = Path(tmp) / f"{pages}.pdf"
            make_pdf(pages, path)
            out = subprocess.run([sys.executable, __file__, "--load", str(path)], check=False, capture_output=True,
                                 text=True)
            if out.returncode:
                sys.exit(out.stderr)
            out = out.stdout
            row = {"pages": pages, "mb": round(path.stat().st_size / 1e6, 1), **json.loads(out.splitlines()[-1])}
            row["seconds_per_1000_pages"] = round(row["seconds"] / pages * 1000, 1)
            print(json.dumps(row), flush=True)
            if args.ingest:
                print(json.dumps({"pages": pages, **ingest(path, Path(tmp) / f"index-{pages}")}), flush=True)


def ingest(pdf: Path, index: Path) -> dict:
    """`rag ingest --json` of one PDF into a new index, in a child process: its report, time and peak memory."""
    import os

    rag = Path(sys.executable).with_name("rag")
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([str(rag), "ingest", "--json", str(pdf)], capture_output=True, text=True,
                          env={**os.environ, "RAG_INDEX__DIR": str(index)}, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(done.stderr)
    report = json.loads(done.stdout)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far: see `before`
    return {"ingest_seconds": round(seconds, 1), "chunks": report["chunks_added"],
            "ingest_peak_rss_mb": round(peak / 1024) if peak > before else None,
            "partial": len(report.get("partial", []))}


if __name__ == "__main__":
    main()
