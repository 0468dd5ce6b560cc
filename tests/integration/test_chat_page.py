"""The chat page in headless Chromium (Debian's `chromium`, driven by Playwright): ask, watch the cited
answer stream in and render as Markdown, open the cited span beside the sources, upload a document and ask about
it. Screenshots of what the page showed are kept in test-artifacts/chat-page/."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "chat-page"  # gitignored; what a reviewer looks at after the run

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        message = "Debian's chromium is not installed (make install runs apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, api_url):
    context = browser.new_context(viewport={"width": 1200, "height": 800},
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(api_url)
    page.wait_for_function("document.querySelector('#model').options.length > 0")
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    return shot


def _upload(page, path: Path, text: str | None = None) -> None:
    """Upload `path` (written with `text` first, if given) from the page and wait until it is ingested."""
    if text is not None:
        path.write_text(text)
    page.set_input_files("#file", str(path))
    page.click("#upload")
    page.wait_for_function("document.querySelector('#upload-status').textContent.includes('chunks added')",
                           timeout=120_000)


def _ask(page, question: str):
    page.fill("#question", question)
    page.click("#ask")
    page.wait_for_selector(".turn.assistant[data-done]", timeout=60_000)
    return page.locator(".turn.assistant").last


def test_a_question_streams_a_cited_answer_and_the_span_opens(page, api_url):
    assert page.locator("#model option").all_inner_texts()[:2] == ["extractive", "generative"]
    assert "default" in page.locator("#collection option").all_inner_texts()
    turn = _ask(page, "What causes ocean tides?")
    assert "Moon" in turn.locator(".answer").inner_text() and "[1]" in turn.locator(".answer").inner_text()
    assert turn.locator(".answer.rendered p").count() >= 1, "the finished answer is rendered Markdown"
    # Notes are for operators: the API carries them, the page does not show them.
    notes = page.request.post(f"{api_url}/ask", data={"question": "What causes ocean tides?"}).json()["notes"]
    assert notes and not any(note in turn.inner_text() for note in notes)
    citation = turn.locator(".citations button").first
    assert "tides.md" in citation.inner_text()
    citation.click()
    page.wait_for_selector("#source-panel:not([hidden])")
    assert "gravitational pull of the Moon" in page.locator("#source-text mark").inner_text()
    # The side panel lists the answer's sources; the [1] marker in the answer opens the same one.
    assert "tides.md" in page.locator("#source-list button.current").inner_text()
    page.click("#close-source")
    turn.locator(".answer button.cite").first.click()
    page.wait_for_selector("#source-panel:not([hidden])")
    assert "gravitational pull of the Moon" in page.locator("#source-text mark").inner_text()
    screenshot(page, "cited-answer-and-source")


MARKDOWN_ANSWER = (
    "Install it first [1]:\n\n```bash\npip install \"fastapi[standard]\"\n```\n\n"
    "Then:\n\n1. write `main.py`\n2. run `fastapi dev main.py` [2]\n\n"
    "| command | reloads |\n|---|---|\n| fastapi dev | yes |\n| fastapi run | no |\n\n"
    'A document said <img src=x onerror="window.injected = 1"> and [a link](javascript:window.injected=2).'
)


def _chat_stream(text: str, citations: list[dict]) -> str:
    """The events /v1/chat/completions streams, around `text`, with the server's own Markdown rendering."""
    from rag.api.markdown import answer_html

    rag = {"abstained": False, "confidence": 0.9, "answer_type": "generated", "mode": "generative",
           "collection": "default", "retrieval_query": "q", "timings_ms": {"total": 1.0}, "notes": [],
           "answer_html": answer_html(text)}
    chunks = [{"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "citations": citations, "rag": rag,
               "task": {"name": "qa", "reason": "a question"}}]
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


def test_a_markdown_answer_shows_code_lists_and_tables_and_runs_no_html(page):
    citations = [{"index": i, "doc_id": f"doc{i}", "source": f"docs/{name}", "start": 0, "end": 10, "text": "…",
                  "pages": [i + 1]} for i, name in ((1, "install.md"), (2, "run.pdf"))]
    # The page is what is under test here: its request is answered with a fixed answer in the server's format.
    page.route("**/v1/chat/completions", lambda route: route.fulfill(
        status=200, headers={"Content-Type": "text/event-stream"}, body=_chat_stream(MARKDOWN_ANSWER, citations)))
    answer = _ask(page, "How do I install and run FastAPI?").locator(".answer")
    assert answer.locator("pre code").inner_text().strip() == 'pip install "fastapi[standard]"'
    assert answer.locator("ol li").count() == 2 and answer.locator("ol li code").first.inner_text() == "main.py"
    assert answer.locator("table td").all_inner_texts() == ["fastapi dev", "yes", "fastapi run", "no"]
    # Raw HTML is text, never an element; the javascript: link is not a link; nothing ran.
    assert answer.locator("img").count() == 0 and '<img src=x onerror="window.injected = 1">' in answer.inner_text()
    assert answer.locator("a").count() == 0
    assert page.evaluate("window.injected") is None
    # A code block's copy button puts the code on the clipboard.
    answer.locator(".code-block button.copy").click()
    assert page.evaluate("navigator.clipboard.readText()").strip() == 'pip install "fastapi[standard]"'
    assert answer.locator(".code-block button.copy").inner_text() == "Copied"
    assert [button.inner_text() for button in answer.locator("button.cite").all()] == ["[1]", "[2]"]
    screenshot(page, "markdown-answer")


def test_html_in_a_document_reaches_the_page_as_text(page, tmp_path):
    _upload(page, tmp_path / "bells.txt", 'The chapel bells ring <img src=x onerror="window.injected = 1"> at noon.\n')
    turn = _ask(page, "When do the chapel bells ring?")
    assert "<img src=x" in turn.locator(".answer").inner_text()
    assert turn.locator(".answer img").count() == 0 and page.evaluate("window.injected") is None


def test_uploading_from_the_page_makes_the_document_answerable(page, tmp_path):
    _upload(page, tmp_path / "glaciers.md", "# Glaciers\n\nGlaciers carve U-shaped valleys as they slowly move downhill.\n")
    turn = _ask(page, "What shape of valleys do glaciers carve?")
    assert "U-shaped" in turn.locator(".answer").inner_text()
    assert "glaciers.md" in turn.locator(".citations").inner_text()


def test_a_slide_citation_names_its_page_and_opens_that_slide_alone(page, tmp_path):
    from tests.ingest.test_formats import make_pptx

    deck = tmp_path / "deck.pptx"
    deck.write_bytes(make_pptx())
    _upload(page, deck)
    turn = _ask(page, "Where is the new office?")
    citation = turn.locator(".citations button").first
    assert "deck.pptx, p. 1" in citation.inner_text()
    citation.click()
    page.wait_for_selector("#source-panel:not([hidden])")
    assert "Lisbon" in page.locator("#source-text mark").inner_text()
    shown = page.locator("#source-text").inner_text()
    assert "Quarterly results" in shown and "Headcount" not in shown  # slide 1 only, not the whole deck
    assert "deck.pptx, p. 1" in page.locator("#source-title").inner_text()


def test_errors_show_in_the_page_not_as_a_blank(page):
    page.evaluate("document.querySelector('#model').add(new Option('gpt-9', 'gpt-9'))")
    page.select_option("#model", "gpt-9")
    page.fill("#question", "Anything?")
    page.click("#ask")
    page.wait_for_selector(".turn.error")
    assert "unknown model" in page.locator(".turn.error").last.inner_text()


def test_a_drawing_request_shows_the_image_and_a_video_request_plays_the_clip(page):
    drawn = _ask(page, "Draw a red bicycle leaning on a wall")
    image = drawn.locator("img.generated")
    assert image.count() == 1 and image.evaluate("img => img.complete && img.naturalWidth") == 64
    assert "image" in drawn.locator(".meta").inner_text()
    filmed = _ask(page, "Make a short video of waves on a beach")
    filmed.locator("video.generated").wait_for(timeout=120_000)
    assert filmed.locator("video.generated").evaluate("v => v.src.startsWith('blob:')")
