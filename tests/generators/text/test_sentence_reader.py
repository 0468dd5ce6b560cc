from __future__ import annotations

from generators.text.reading import ReaderPassage
from generators.text.sentence_reader import SentenceReader, split_sentences
from index.bm25 import analyze
from tests.conftest import CountingEmbedder


def test_split_sentences_gives_trimmed_spans_in_english_and_chinese():
    text = "  First sentence here. Second one!  \n\n北京是首都。上海很大。\n- a list item\n"
    spans = split_sentences(text)
    pieces = [text[a:b] for a, b in spans]
    assert pieces == ["First sentence here.", "Second one!", "北京是首都。", "上海很大。", "- a list item"]


def test_best_sentence_is_returned_with_document_offsets(embedder):
    document = "Intro text that is not relevant at all. " * 3 + (
        "Bees live in hives. Honey bees tell each other where flowers are by dancing. Wax is made by glands."
    )
    offset = 40 * 3
    passage = ReaderPassage(key=7, text=document[offset:], offset=offset)
    result = SentenceReader(embedder, analyze).run("How do honey bees tell where flowers are?", [passage])
    spans = result.spans
    best = spans[0]
    assert result.answer_type == "sentence" and result.answer == best.text and result.confidence == best.score
    assert best.key == 7 and "dancing" in best.text
    assert document[best.start : best.end] == best.text
    assert spans[0].score >= spans[-1].score


def test_no_passages_no_spans(embedder):
    result = SentenceReader(embedder, analyze).run("anything?", [])
    assert result.answer == "" and result.spans == [] and result.confidence == 0.0


def test_headings_are_not_answers(embedder):
    text = "## How do bees find flowers?\n\nBees find flowers by scent and by the waggle dance of other bees."
    spans = SentenceReader(embedder, analyze).run("How do bees find flowers?", [ReaderPassage(1, text, 0)]).spans
    assert all(not s.text.startswith("#") for s in spans) and "waggle" in spans[0].text


def test_sentence_vectors_are_cached_and_the_cache_stays_bounded(embedder):
    from generators.text.reading import ReaderPassage
    from generators.text.sentence_reader import SentenceReader
    from index.bm25 import analyze

    counting = CountingEmbedder(embedder, count_queries=True)  # no query cache: each question is embedded
    calls = counting.calls
    reader = SentenceReader(counting, analyze, cache_size=3)
    passage = [ReaderPassage(1, "Tides follow the Moon closely. Bees dance to point at flowers.", 0)]
    first = reader.rank_sentences("What do bees do?", passage)
    second = reader.rank_sentences("What do bees do?", passage)
    assert first[0].text == second[0].text == "Bees dance to point at flowers."
    assert abs(first[0].score - second[0].score) < 1e-5
    assert calls[0] == ["Tides follow the Moon closely.", "Bees dance to point at flowers."]
    assert calls[1:] == [["What do bees do?"]] * 2  # the second call embedded the question only
    reader.rank_sentences("x?", [ReaderPassage(2, "One more sentence here. And a second one here. A third is here.", 0)])
    assert len(reader._cache) == 3


def test_sentence_bounds_cover_every_sentence_the_span_touches():
    from generators.text.sentence_reader import sentence_bounds

    text = "Intro here. The cat sat. The dog ran off."
    cat = text.index("cat")
    assert text[slice(*sentence_bounds(text, cat, cat + 3))] == "The cat sat."
    across = sentence_bounds(text, cat, text.index("dog") + 3)
    assert text[slice(*across)] == "The cat sat. The dog ran off."
    assert sentence_bounds("", 0, 0) == (0, 0)  # no sentence: the span itself


def test_the_code_block_a_sentence_introduces_is_found_right_after_it():
    from generators.text.sentence_reader import code_block_after

    text = ("You can use the special `Body` parameter `embed`:\n\n```Python\nitem: Annotated[Item, Body(embed=True)]\n"
            "```\n\nas in the example.\n\n~~~console\n$ fastapi run\n~~~")
    intro_end = text.index(":") + 1
    start, end = code_block_after(text, intro_end)
    assert text[start:end] == "```Python\nitem: Annotated[Item, Body(embed=True)]\n```"
    assert code_block_after(text, text.index("as in")) is None  # words, not only whitespace, before the block
    after_example = text.index("example.") + len("example.")
    assert text[slice(*code_block_after(text, after_example))] == "~~~console\n$ fastapi run\n~~~"
    assert code_block_after(text, intro_end, max_chars=20) is None  # too long to quote
    assert code_block_after("Run this:\n\n```\nno closing fence", 9) is None


def test_stored_sentence_vectors_are_used_instead_of_embedding(embedder):
    counting = CountingEmbedder(embedder)
    calls = counting.calls
    text = "## Bees\n\nTides follow the Moon closely. Bees dance to point at flowers."
    spans = split_sentences(text)
    stored = embedder.embed([text[a:b] for a, b in spans]).vectors
    reader = SentenceReader(counting, analyze)
    with_stored = reader.rank_sentences("What do bees do?", [ReaderPassage(1, text, 0, stored)])
    assert calls == []  # every sentence came from the stored rows
    live = SentenceReader(embedder, analyze).rank_sentences("What do bees do?", [ReaderPassage(1, text, 0)])
    assert [(s.text, round(s.score, 5)) for s in with_stored] == [(s.text, round(s.score, 5)) for s in live]

    # Rows that do not match the text's sentences (another split, another text) are not trusted.
    reader.rank_sentences("What do bees do?", [ReaderPassage(2, text, 0, stored[:2])])
    assert calls == [["Tides follow the Moon closely.", "Bees dance to point at flowers."]]
