"""Answers as HTML for pages that show them: Markdown (CommonMark with tables) rendered by markdown-it-py, raw
HTML escaped first, so neither a document nor a model can put markup or script into a page."""

from __future__ import annotations

from markdown_it import MarkdownIt

# The commonmark preset with `html` off: `<img onerror=...>` in a passage or an answer comes out as text, and
# markdown-it's link check refuses javascript:, vbscript: and data: URLs (other than images).
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def answer_html(text: str) -> str:
    """`text` (Markdown) as an HTML fragment."""
    return _MARKDOWN.render(text)
