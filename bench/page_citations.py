"""Page numbers in citations of a PDF: is the cited page the page that holds the answer?

A PDF is made here (fpdf2): N pages of prose from the FastAPI docs, each page with one fact of its own
("The storage quota of team Aurora-12 is 740 gigabytes.") at the top, middle or bottom of the page, so
that chunks also run across page breaks. Each fact is asked about through the chain (`rag eval
docqa`'s in-process chain over an index of the PDF, offline default models); a question counts as right
when the answer holds the fact, its first citation's pages are exactly [the fact's page], and the
cited text is on that page as pypdf reads the page on its own (a check that does not use our page spans).
Also counted: citations (right or wrong) whose pages hold the cited text.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/page_citations.py --pages 40 --mode extractive
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the project: bench/ingest.py is not the ingest package

TEAMS = ("Aurora Boreal Cedar Delta Ember Fjord Garnet Harbor Indigo Juniper Kestrel Lagoon Meadow Nimbus Onyx "
         "Prairie Quartz Raven Sierra Tundra Umber Violet Willow Xenon Yarrow Zephyr Acacia Bramble Canyon Dune "
         "Estuary Falcon Glacier Heron Iris Jasper Kelp Lichen Maple Nectar Orchid Pebble Quill Reef Sorrel "
         "Thistle Urchin Vale Walnut Yucca").split()


def fact(page: int) -> tuple[str, str, str]:
    """(sentence, question, answer) for a page."""
    team = TEAMS[(page - 1) % len(TEAMS)]  # one name per page (up to 50 pages): the question names its page
    quota = str(100 + page * 17)
    return (f"The storage quota of team {team} is {quota} gigabytes.",
            f"What is the storage quota of team {team}?", quota)


def make_pdf(pages: int, path: Path) -> None:
    from fpdf import FPDF

    from ocr import DOCS, prose  # bench/ocr.py: paragraphs of plain prose from the docs

    paragraphs = prose(DOCS / "en" / "docs", 200_000).split("\n")
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=10)
    for number in range(1, pages + 1):
        pdf.add_page()
        filler = [paragraphs[(number * 5 + i) % len(paragraphs)][:600] for i in range(4)]
        filler.insert((number % 3) * 2, fact(number)[0])  # top, middle or bottom of the page
        pdf.multi_cell(0, 5, "\n\n".join(filler).encode("latin-1", "replace").decode("latin-1"))
    pdf.output(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--mode", default="extractive")
    args = parser.parse_args()

    from rag.evaluation.docqa import docs_chain

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        make_pdf(args.pages, folder / "handbook.pdf")
        from pypdf import PdfReader

        page_texts = [" ".join((p.extract_text() or "").split()) for p in PdfReader(folder / "handbook.pdf").pages]
        rows = []
        with docs_chain([folder], Path(tmp) / "work") as (chain, _):
            for page in range(1, args.pages + 1):
                _, question, answer = fact(page)
                response = chain.run(question, mode=args.mode)
                top = response.citations[0] if response.citations else None
                on_page = top is not None and " ".join(top.text.split()) in page_texts[page - 1]
                cited_text = " ".join(top.text.split()) if top else ""
                rows.append({"page": page, "answered": answer in response.answer,
                             "cited_pages": top.pages if top else [], "span_on_page": on_page,
                             # whatever was cited, the pages it names hold its text
                             "cited_pages_hold_it": bool(top) and cited_text in " ".join(
                                 page_texts[n - 1] for n in top.pages)})
    right = [r for r in rows if r["answered"] and r["cited_pages"] == [r["page"]] and r["span_on_page"]]
    wrong_pages = [r for r in rows if r["cited_pages"] and r["cited_pages"] != [r["page"]]]
    for row in wrong_pages:
        print(json.dumps(row))
    print(json.dumps({"pages": args.pages, "mode": args.mode, "answered": sum(r["answered"] for r in rows),
                      "cited_page_right": sum(r["cited_pages"] == [r["page"]] for r in rows),
                      "answered_and_page_right": len(right),
                      "citations_whose_pages_hold_their_text": sum(r["cited_pages_hold_it"] for r in rows),
                      "page_right_when_answered": round(len(right) / max(1, sum(r["answered"] for r in rows)), 3)}))


if __name__ == "__main__":
    main()
