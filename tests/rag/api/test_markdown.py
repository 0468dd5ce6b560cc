"""Answers rendered for pages: Markdown becomes HTML, and HTML inside it never does."""

from __future__ import annotations

from rag.api.markdown import answer_html


def test_code_blocks_lists_and_tables_render():
    html = answer_html("Install it [1]:\n\n```bash\npip install fastapi\n```\n\n- one\n- two\n\n"
                       "| setting | default |\n|---|---|\n| top_k | 5 |\n")
    assert '<pre><code class="language-bash">pip install fastapi\n</code></pre>' in html
    assert "<li>one</li>" in html and "<li>two</li>" in html
    assert "<th>setting</th>" in html and "<td>top_k</td>" in html
    assert "[1]" in html, "citation markers stay for the page to link"


def test_raw_html_from_documents_or_models_is_escaped():
    html = answer_html('The bells ring <img src=x onerror="alert(1)"> at noon.\n\n<script>alert(2)</script>')
    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_only_safe_links_become_links():
    html = answer_html("[docs](https://fastapi.tiangolo.com) and [trap](javascript:alert(1))")
    assert '<a href="https://fastapi.tiangolo.com">docs</a>' in html
    assert 'href="javascript' not in html and "[trap](javascript:alert(1))" in html


def test_source_line_breaks_inside_a_paragraph_stay_one_paragraph():
    assert answer_html("one line\nwrapped by the source") == "<p>one line\nwrapped by the source</p>\n"
