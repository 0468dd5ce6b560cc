"""The chat page in headless Chromium (Debian's `chromium`, driven by Playwright): ask, watch the cited
answer stream in, open the cited span, upload a document and ask about it."""

from __future__ import annotations

import os
import shutil

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto(api_url)
    page.wait_for_function("document.querySelector('#model').options.length > 0")
    yield page
    page.close()


def _ask(page, question: str):
    page.fill("#question", question)
    page.click("#ask")
    page.wait_for_selector(".turn.assistant[data-done]", timeout=60_000)
    return page.locator(".turn.assistant").last


def test_a_question_streams_a_cited_answer_and_the_span_opens(page, api_url, tmp_path):
    assert page.locator("#model option").all_inner_texts()[:2] == ["extractive", "generative"]
    assert "default" in page.locator("#collection option").all_inner_texts()
    turn = _ask(page, "What causes ocean tides?")
    assert "Moon" in turn.locator(".answer").inner_text() and "[1]" in turn.locator(".answer").inner_text()
    # Notes are for operators: the API carries them, the page does not show them.
    notes = page.request.post(f"{api_url}/ask", data={"question": "What causes ocean tides?"}).json()["notes"]
    assert notes and not any(note in turn.inner_text() for note in notes)
    citation = turn.locator(".citations button").first
    assert "tides.md" in citation.inner_text()
    citation.click()
    page.wait_for_selector("#source-panel:not([hidden])")
    assert "gravitational pull of the Moon" in page.locator("#source-text mark").inner_text()
    shot = tmp_path / "chat-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_uploading_from_the_page_makes_the_document_answerable(page, tmp_path):
    notes = tmp_path / "glaciers.md"
    notes.write_text("# Glaciers\n\nGlaciers carve U-shaped valleys as they slowly move downhill.\n")
    page.set_input_files("#file", str(notes))
    page.click("#upload")
    page.wait_for_function("document.querySelector('#upload-status').textContent.includes('chunks added')",
                           timeout=120_000)
    turn = _ask(page, "What shape of valleys do glaciers carve?")
    assert "U-shaped" in turn.locator(".answer").inner_text()
    assert "glaciers.md" in turn.locator(".citations").inner_text()


def test_a_slide_citation_names_its_page_and_opens_that_slide_alone(page, tmp_path):
    from tests.ingest.test_formats import make_pptx

    deck = tmp_path / "deck.pptx"
    deck.write_bytes(make_pptx())
    page.set_input_files("#file", str(deck))
    page.click("#upload")
    page.wait_for_function("document.querySelector('#upload-status').textContent.includes('chunks added')",
                           timeout=120_000)
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
