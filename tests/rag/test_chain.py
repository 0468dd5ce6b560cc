from __future__ import annotations

from pathlib import Path

import pytest

from generators.text.qa_reader import ExtractiveReader
from generators.text.reading import ReaderPassage, ReaderResult, ReaderSpan, SpanReader
from generators.text.reranker import CrossEncoderReranker, fused_order
from generators.text.sentence_reader import SentenceReader
from index.bm25 import analyze
from index.store import IndexStore
from ingest.pipeline import IngestPipeline
from rag.chain import NOT_FOUND, QUOTE_READER_SPANS, AbstentionThresholds, AskChain, order_by_rerank_and_evidence
from rag.retriever import HybridRetriever, MetadataFilter, reciprocal_rank_fusion
from tests.conftest import CountingEmbedder

# A gate that lets on-topic questions through and stops off-topic ones on the tiny corpus.
GATE = AbstentionThresholds(evidence={"*": 0.45})


@pytest.fixture
def index(tmp_path, corpus, embedder, chunker):
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, chunker).run([corpus])
    with IndexStore(tmp_path / "idx").reader() as reader:
        yield reader


@pytest.fixture
def chain(index, embedder):
    sentences = SentenceReader(embedder, analyze)
    return AskChain(HybridRetriever(index, embedder), {"extractive": sentences}, sentences, thresholds=GATE)


def test_rrf_weights_and_ties():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], [1.0, 1.0], k=60)
    assert [i for i, _ in fused] == [1, 3, 2]
    dense_only = reciprocal_rank_fusion([[1, 2], [2, 1]], [1.0, 0.0], k=60)
    assert [i for i, _ in dense_only] == [1, 2]


def test_answer_cites_the_exact_span_of_its_source(chain, corpus):
    response = chain.run("What causes ocean tides?")
    assert not response.abstained and "Moon" in response.answer
    assert response.answer_type == "sentence" and response.mode == "extractive"
    top = response.citations[0]
    assert top.source.endswith("tides.md")
    assert (corpus / "tides.md").read_text()[top.start : top.end] == top.text == response.answer
    assert set(response.timings_ms) >= {"retrieve", "rerank", "evidence", "read", "total"}


def test_unrelated_question_abstains_with_closest_passages(chain):
    response = chain.run("What is the airspeed velocity of an unladen swallow in Norway's tax code?")
    assert response.abstained and response.answer == NOT_FOUND
    assert len(response.citations) > 0
    assert any("threshold" in note for note in response.notes)


def test_the_gate_runs_before_the_reader(index, embedder):
    class Exploding(SpanReader):
        answer_type = "generated"

        def run(self, *args, **kwargs):
            raise AssertionError("the reader must not be called for an off-topic question")

    sentences = SentenceReader(embedder, analyze)
    chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": Exploding()},
                     sentences, thresholds=GATE)
    response = chain.run("Who won the 1974 football world cup final?", mode="generative")
    assert response.abstained and response.mode == "generative"


@pytest.mark.parametrize("question", ["", "   ", "x" * 5000])
def test_bad_questions_are_rejected(chain, question):
    with pytest.raises(ValueError):
        chain.run(question)


def test_unknown_mode_is_rejected_with_the_available_ones(chain):
    with pytest.raises(ValueError, match="extractive"):
        chain.run("What causes tides?", mode="telepathic")


def test_source_and_document_filters_restrict_the_citations(chain, index):
    response = chain.run("What causes ocean tides?", filters=MetadataFilter(sources=("*/bees.md",)))
    assert all(c.source.endswith("bees.md") for c in response.citations)
    bees = next(d for s, d in index.store.sources().items() if s.endswith("bees.md"))
    by_id = chain.run("How do bees communicate?", filters=MetadataFilter(doc_ids=(bees,)))
    assert by_id.citations and all(c.doc_id == bees for c in by_id.citations)
    nothing = chain.run("How do bees communicate?", filters=MetadataFilter(sources=("*.pdf",)))
    assert nothing.abstained and nothing.citations == [] and any("filters" in n for n in nothing.notes)


class _RecordingReader(SpanReader):
    """Answers with its first passage and remembers the order it was given (tests the chain, not a model)."""

    answer_type = "sentence"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def run(self, question, passages, *, top_k=3, **_):
        self.seen = [p.key for p in passages]
        first = passages[0]
        return ReaderResult(first.text, self.answer_type, 1.0,
                            [ReaderSpan(first.key, first.offset, first.offset + len(first.text), first.text, 1.0)])


def test_reranker_reorders_candidates_and_the_reader_sees_its_order(index, embedder, tiny_cross_encoder_dir):
    recorder = _RecordingReader()
    reranker = CrossEncoderReranker(str(tiny_cross_encoder_dir))
    chain = AskChain(HybridRetriever(index, embedder), {"extractive": recorder}, SentenceReader(embedder, analyze),
                     reranker=reranker, top_k=3, rerank_depth=10, rerank_confident_depth=None)  # all ten, as below
    question = "How do bees communicate?"
    candidates = HybridRetriever(index, embedder).run(question, top_k=10).passages
    # The reranker reads what retrieval matched: each passage's heading path, then its text.
    scores = reranker.run(question, [p.indexed_text for p in candidates]).scores
    expected = [candidates[i].chunk_id for i in sorted(range(len(candidates)), key=lambda i: (-scores[i], i))][:3]
    response = chain.run(question)
    assert recorder.seen == expected
    assert response.timings_ms["rerank"] > 0 and not response.notes


class _Passage:
    def __init__(self, chunk_id: int) -> None:
        self.chunk_id = chunk_id


def test_evidence_settles_a_disagreement_between_retrieval_and_reranker():
    passages = [_Passage(10), _Passage(11), _Passage(12)]
    scores = [0.1, 0.9, 0.5]  # the reranker prefers the second; retrieval (weight 2) narrowly keeps the first
    assert order_by_rerank_and_evidence(passages, scores, [], retrieval_weight=2.0, evidence_weight=0.0) \
        == fused_order(scores, 2.0) == [0, 1, 2]
    second_best = [ReaderSpan(11, 0, 5, "bees.", 0.8), ReaderSpan(10, 0, 5, "tides", 0.2)]
    assert order_by_rerank_and_evidence(passages, scores, second_best, retrieval_weight=2.0,
                                        evidence_weight=2.0)[0] == 1
    first_best = [ReaderSpan(10, 0, 5, "bees.", 0.8), ReaderSpan(11, 0, 5, "tides", 0.2)]
    assert order_by_rerank_and_evidence(passages, scores, first_best, retrieval_weight=2.0,
                                        evidence_weight=2.0) == [0, 1, 2]
    # Passages with no scored sentence rank last by evidence; full ties keep the retrieval order.
    assert order_by_rerank_and_evidence(passages, [0.5, 0.5, 0.5], [ReaderSpan(12, 0, 5, "x", 0.9)],
                                        retrieval_weight=0.0, evidence_weight=3.0) == [2, 0, 1]
    assert order_by_rerank_and_evidence(passages, [0.5, 0.5, 0.5], [], retrieval_weight=0.0,
                                        evidence_weight=3.0) == [0, 1, 2]


def test_with_an_evidence_weight_the_reader_sees_the_three_way_order(index, embedder, tiny_cross_encoder_dir):
    sentences = SentenceReader(embedder, analyze)
    reranker = CrossEncoderReranker(str(tiny_cross_encoder_dir), retrieval_weight=1.0)
    question = "How do honey bees communicate the direction of flowers?"
    candidates = HybridRetriever(index, embedder).run(question, top_k=10).passages
    # The reranker reads what retrieval matched: each passage's heading path, then its text.
    scores = reranker.run(question, [p.indexed_text for p in candidates]).scores
    ranked = sentences.rank_sentences(question, [ReaderPassage(p.chunk_id, p.text, p.start) for p in candidates],
                                      top_k=400)
    expected = [candidates[i].chunk_id for i in order_by_rerank_and_evidence(
        candidates, scores, ranked, retrieval_weight=1.0, evidence_weight=40.0)][:3]
    recorder = _RecordingReader()
    # Every candidate reranked (no adaptive depth): this test is about the order, `expected` ranks all ten.
    AskChain(HybridRetriever(index, embedder), {"extractive": recorder}, sentences, reranker=reranker, top_k=3,
             rerank_depth=10, rerank_confident_depth=None, rerank_evidence_weight=40.0).run(question)
    assert recorder.seen == expected
    assert recorder.seen[0] == ranked[0].key  # at weight 40 the evidence ranking decides
    without = _RecordingReader()
    AskChain(HybridRetriever(index, embedder), {"extractive": without}, sentences, reranker=reranker, top_k=3,
             rerank_depth=10, rerank_confident_depth=None).run(question)
    assert without.seen == [candidates[i].chunk_id for i in fused_order(scores, 1.0)][:3]


def test_a_question_in_a_language_the_reranker_does_not_serve_keeps_retrieval_order(index, embedder,
                                                                                   tiny_cross_encoder_dir):
    class CountingReranker(CrossEncoderReranker):
        calls = 0

        def run(self, query, passages):
            CountingReranker.calls += 1
            return super().run(query, passages)

    recorder = _RecordingReader()
    chain = AskChain(HybridRetriever(index, embedder), {"extractive": recorder}, SentenceReader(embedder, analyze),
                     reranker=CountingReranker(str(tiny_cross_encoder_dir)), top_k=3, rerank_depth=10,
                     rerank_languages=["en"], thresholds=AbstentionThresholds(evidence={"*": 0.0}))
    chinese = chain.run("蜜蜂 如何 交流 bees")
    assert CountingReranker.calls == 0
    assert any("reranker serves en, not zh" in note for note in chinese.notes)
    # Only the top 3 retrieved were fetched (no reranking depth), in the order the chain gives without a reranker.
    retrieved = HybridRetriever(index, embedder).run("蜜蜂 如何 交流 bees", top_k=3).passages
    assert sorted(recorder.seen) == sorted(p.chunk_id for p in retrieved)
    english = chain.run("How do bees communicate?")
    assert CountingReranker.calls == 1 and not any("reranker serves" in note for note in english.notes)


def test_when_both_retrievers_rank_the_same_passage_first_only_the_confident_depth_is_reranked(
        index, embedder, tiny_cross_encoder_dir):
    class CountingReranker(CrossEncoderReranker):
        def run(self, query, passages):
            self.counts.append(len(passages))
            return super().run(query, passages)

    questions = ["More on jazz.", "glucose oxygen photosynthesis light", "How do bees communicate?",
                 "coffee arabica robusta"]
    retriever = HybridRetriever(index, embedder)
    agreeing = {q: (top := retriever.run(q, top_k=10).passages[0]).dense_rank == 1 and top.bm25_rank == 1
                for q in questions}
    assert any(agreeing.values()) and not all(agreeing.values())  # both cases are tried
    for confident_depth in (2, None):
        reranker = CountingReranker(str(tiny_cross_encoder_dir))
        reranker.counts = []
        recorder = _RecordingReader()
        chain = AskChain(retriever, {"extractive": recorder}, SentenceReader(embedder, analyze), reranker=reranker,
                         top_k=3, rerank_depth=10, rerank_confident_depth=confident_depth,
                         thresholds=AbstentionThresholds(evidence={"*": 0.0}))
        for question in questions:
            chain.run(question)
            candidates = retriever.run(question, top_k=10).passages
            scored = 2 if agreeing[question] and confident_depth else len(candidates)
            assert reranker.counts[-1] == scored, question
            head = candidates[:scored]
            scores = reranker.run(question, [p.indexed_text for p in head]).scores
            order = [head[i].chunk_id for i in fused_order(scores, 0.0)] + [p.chunk_id for p in candidates[scored:]]
            assert recorder.seen == order[:3]  # the reranked head first, then the rest in retrieval order


def test_extractive_reader_spans_are_cited_in_document_offsets(index, embedder, corpus, tiny_qa_model_dir):
    sentences = SentenceReader(embedder, analyze)
    chain = AskChain(HybridRetriever(index, embedder), {"extractive": ExtractiveReader(str(tiny_qa_model_dir))},
                     sentences)
    response = chain.run("What causes ocean tides?")
    assert response.answer_type == "span" and not response.abstained
    for citation in response.citations:
        assert (corpus / citation.source.rsplit("/", 1)[-1]).read_text()[citation.start : citation.end] == citation.text
    assert response.answer == response.citations[0].text


def test_span_threshold_abstains_on_low_reader_confidence(index, embedder, tiny_qa_model_dir):
    sentences = SentenceReader(embedder, analyze)
    chain = AskChain(HybridRetriever(index, embedder), {"extractive": ExtractiveReader(str(tiny_qa_model_dir))},
                     sentences, thresholds=AbstentionThresholds(span=0.99))
    response = chain.run("What causes ocean tides?")
    assert response.abstained and any("span" in n for n in response.notes)


def test_dense_ranking_is_left_out_for_languages_the_embedder_does_not_serve(tmp_path, embedder, chunker):
    folder = tmp_path / "zh"
    folder.mkdir()
    (folder / "a.md").write_text("# 蜜蜂\n\n蜜蜂通过摇摆舞告诉同伴花的方向。\n", encoding="utf-8")
    (folder / "b.md").write_text("# 潮汐\n\n潮汐主要由月球的引力引起。\n", encoding="utf-8")
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, chunker).run([folder])
    with IndexStore(tmp_path / "idx").reader() as reader:
        retriever = HybridRetriever(reader, embedder, dense_languages=["en"])
        passages = retriever.run("潮汐是由什么引起的？").passages
        assert passages and all(p.dense_rank is None for p in passages)
        assert passages[0].source.endswith("b.md")
        english = retriever.run("What causes tides?").passages
        assert any(p.dense_rank is not None for p in english)


def test_without_a_reranker_the_passage_with_the_best_sentence_is_read_first(index, embedder):
    sentences = SentenceReader(embedder, analyze)
    question = "How do honey bees communicate the direction of flowers?"
    retrieved = HybridRetriever(index, embedder).run(question, top_k=5).passages
    ranked = sentences.rank_sentences(question, [ReaderPassage(p.chunk_id, p.text, p.start) for p in retrieved],
                                      top_k=400)
    recorder = _RecordingReader()
    AskChain(HybridRetriever(index, embedder), {"extractive": recorder}, sentences).run(question)
    assert recorder.seen[0] == ranked[0].key  # the best sentence's passage is read first
    assert sorted(recorder.seen) == sorted(p.chunk_id for p in retrieved)  # same passages, new order

    plain = _RecordingReader()
    AskChain(HybridRetriever(index, embedder), {"extractive": plain}, sentences, evidence_rank_prior=None).run(question)
    assert plain.seen == [p.chunk_id for p in retrieved]


def test_evidence_does_not_reorder_languages_the_embedder_does_not_serve(tmp_path, embedder, chunker):
    folder = tmp_path / "zh"
    folder.mkdir()
    for i, text in enumerate(["蜜蜂通过摇摆舞告诉同伴花的方向。", "蜜蜂的摇摆舞很有名。", "潮汐主要由月球的引力引起。"]):
        (folder / f"{i}.md").write_text(f"# 文档{i}\n\n{text}\n", encoding="utf-8")
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, chunker).run([folder])
    with IndexStore(tmp_path / "idx").reader() as reader:
        retriever = HybridRetriever(reader, embedder, dense_languages=["en"])
        question = "蜜蜂怎样告诉同伴花的方向？"
        expected = [p.chunk_id for p in retriever.run(question, top_k=5).passages]
        recorder = _RecordingReader()
        AskChain(retriever, {"extractive": recorder}, SentenceReader(embedder, analyze)).run(question)
        assert recorder.seen == expected


def test_questions_in_languages_the_extractive_reader_lacks_get_the_best_sentence(tmp_path, embedder, chunker):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "zh.md").write_text("# 潮汐\n\n潮汐主要由月球的引力引起。\n", encoding="utf-8")
    (folder / "en.md").write_text("# Tides\n\nOcean tides are caused mainly by the pull of the Moon.\n", encoding="utf-8")
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, chunker).run([folder])
    with IndexStore(tmp_path / "idx").reader() as reader:
        recorder = _RecordingReader()
        chain = AskChain(HybridRetriever(reader, embedder, dense_languages=["en"]), {"extractive": recorder},
                         SentenceReader(embedder, analyze), extractive_languages=["en"])
        chinese = chain.run("潮汐是由什么引起的？")
        assert recorder.seen == [] and chinese.answer_type == "sentence" and not chinese.abstained
        assert "月球" in chinese.answer and any("serves en, not zh" in note for note in chinese.notes)
        english = chain.run("What causes ocean tides?")
        assert recorder.seen and not any("serves en" in note for note in english.notes)


def test_a_heading_that_restates_the_question_opens_the_gate(tmp_path, embedder, chunker):
    docs = tmp_path / "faq"
    docs.mkdir()
    (docs / "faq.md").write_text("# FAQ\n\n## Can I run two ingests at once?\n\nNot into the same index: the second "
                                 "one waits for the lock.\n")
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, chunker).run([docs])
    with IndexStore(tmp_path / "idx").reader() as index:
        sentences = SentenceReader(embedder, analyze)
        strict = AbstentionThresholds(evidence={"*": 5.0})  # no sentence can pass
        closed = AskChain(HybridRetriever(index, embedder), {"extractive": sentences}, sentences, thresholds=strict)
        trace = closed.trace("Can two ingests run at once?")
        assert trace.response.abstained
        assert trace.signals["heading"] is None and trace.signals["sentence"] is not None
        with_headings = AbstentionThresholds(evidence={"*": 5.0}, heading=0.8)
        opened = AskChain(HybridRetriever(index, embedder), {"extractive": sentences}, sentences,
                          thresholds=with_headings)
        trace = opened.trace("Can two ingests run at once?")
        assert not trace.response.abstained and trace.signals["heading"] >= 0.8
        assert opened.trace("How do volcanoes form under the ocean?").response.abstained


def test_a_question_just_below_the_threshold_passes_when_the_top_passages_agree_on_one_document(tmp_path, embedder,
                                                                                                chunker):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "proxy.md").write_text("# Behind a proxy\n\n" + "\n\n".join(
        f"## Setting {n}\n\nThe proxy setting number {n} controls forwarded headers for redirects." for n in range(6)))
    for n, topic in enumerate(["tides", "volcanoes", "glaciers", "deserts", "rivers"]):
        (docs / f"{topic}.md").write_text(f"# {topic.title()}\n\nA short note {n} about {topic} and redirects.")
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, chunker).run([docs])
    question = "How do the proxy settings change forwarded headers for redirects?"
    with IndexStore(tmp_path / "idx").reader() as index:
        sentences = SentenceReader(embedder, analyze)

        def trace(**thresholds):  # noqa: ANN003, ANN202
            chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences}, sentences,
                             thresholds=AbstentionThresholds(**thresholds))
            return chain.trace(question, top_k=2)

        score = trace(evidence={"*": 0.0}).signals["sentence"]
        assert [p.source.endswith("proxy.md") for p in trace(evidence={"*": 0.0}).passages] == [True, True]
        just_above = {"*": score + 0.01}  # the best sentence falls short by 0.01
        assert trace(evidence=just_above).response.abstained
        agreed = trace(evidence=just_above, agreement_margin=0.02, agreement=4)
        assert not agreed.response.abstained and agreed.signals["agreement"] == 1.0
        assert trace(evidence={"*": score + 0.05}, agreement_margin=0.02, agreement=4).response.abstained  # too far
        # The same margin without agreement: the top five passages never hold six of one document's chunks.
        assert trace(evidence=just_above, agreement_margin=0.02, agreement=6).response.abstained


class _ScriptedGenerator:
    model_name = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list[str] = []  # the user message of each call

    def generate(self, messages, **options) -> str:  # noqa: ANN001
        self.prompts.append(messages[-1]["content"])
        return self.reply

    def stream(self, messages, **options):  # noqa: ANN001
        self.prompts.append(messages[-1]["content"])
        for i in range(0, len(self.reply), 4):
            yield self.reply[i : i + 4]


def test_a_generated_answer_ends_with_the_best_supporting_sentence_quoted(index, embedder, corpus):
    from generators.text.generative_reader import GenerativeReader

    sentences = SentenceReader(embedder, analyze)
    reader = GenerativeReader(_ScriptedGenerator("Tides come from the Moon [1]."))
    chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": reader}, sentences,
                     thresholds=GATE)
    response = chain.run("What causes ocean tides?", mode="generative")
    assert not response.abstained and response.answer.startswith("Tides come from the Moon [1].")
    quote, number = _quoted(response.answer)[0]
    cited = response.citations[number - 1]
    assert " ".join(cited.text.split()) == quote
    assert (corpus / cited.source.rsplit("/", 1)[-1]).read_text()[cited.start : cited.end] == cited.text
    *deltas, streamed = chain.stream("What causes ocean tides?", mode="generative")
    assert "".join(deltas) == streamed.answer == response.answer  # the quote streams too
    no_quote = AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": reader}, sentences,
                        thresholds=GATE, quote_evidence=False)
    assert no_quote.run("What causes ocean tides?", mode="generative").answer == "Tides come from the Moon [1]."


def _quoted(answer: str) -> list[tuple[str, int]]:
    """(sentence, citation number) of each "> sentence [n]" block of an answer."""
    blocks = [b[2:] for b in answer.split("\n\n") if b.startswith("> ")]
    return [(b.rsplit(" [", 1)[0], int(b.rsplit("[", 1)[1].rstrip("]"))) for b in blocks]


def test_the_extractive_readers_sentence_is_quoted_before_the_best_supporting_one(index, embedder, corpus,
                                                                                  tiny_qa_model_dir):
    from generators.text.generative_reader import GenerativeReader

    sentences = SentenceReader(embedder, analyze)
    qa = ExtractiveReader(str(tiny_qa_model_dir))
    reader = GenerativeReader(_ScriptedGenerator("Tides come from the Moon [1]."))
    chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": reader}, sentences,
                     thresholds=GATE, quote_reader=qa)
    question = "What causes ocean tides?"
    trace = chain.trace(question, mode="generative")
    quoted = _quoted(trace.response.answer)
    assert quoted, trace.response.answer
    # The first quote is the sentence holding the QA model's best span (random weights: any span, but its sentence).
    passages = [ReaderPassage(p.chunk_id, p.text, p.start) for p in trace.passages]
    best = qa.run(question, passages, top_k=QUOTE_READER_SPANS).spans[0]
    holder = next(p for p in passages if p.key == best.key)
    first_sentence, number = quoted[0]
    cited = trace.response.citations[number - 1]
    assert cited.start <= best.start and best.end <= cited.end
    assert " ".join(cited.text.split()) == first_sentence
    assert holder.text[cited.start - holder.offset : cited.end - holder.offset] == cited.text
    for sentence, number in quoted:  # every quote is an exact span of its source
        cited = trace.response.citations[number - 1]
        assert (corpus / cited.source.rsplit("/", 1)[-1]).read_text()[cited.start : cited.end] == cited.text
    assert len({s for s, _ in quoted}) == len(quoted)  # never the same sentence twice


@pytest.mark.parametrize("reply", ["The passages do not contain the answer.", "Volcanoes erupt on Mars every day."])
def test_a_declining_generator_is_overruled_only_by_strong_evidence(index, embedder, reply):
    from generators.text.generative_reader import GenerativeReader

    sentences = SentenceReader(embedder, analyze)
    reader = GenerativeReader(_ScriptedGenerator(reply))
    question = "What causes ocean tides?"

    def chain(overrule: float | None) -> AskChain:
        margin = None if overrule is None else overrule - 0.45
        thresholds = AbstentionThresholds(evidence={"*": 0.45}, overrule_margin=margin)
        return AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": reader}, sentences,
                        thresholds=thresholds)

    evidence = chain(None).trace(question).signals["sentence"]
    kept = chain(None).run(question, mode="generative")
    assert kept.abstained and kept.answer == NOT_FOUND  # no overrule: the decline stands
    weak = chain(evidence + 0.01).run(question, mode="generative")
    assert weak.abstained
    strong = chain(evidence - 0.01)
    response = strong.run(question, mode="generative")
    assert not response.abstained and response.answer_type == "sentence"
    assert response.answer.startswith("The documents say:") and "Moon" in response.answer
    assert "do not contain" not in response.answer and "Mars" not in response.answer
    assert any("quoted" in note for note in response.notes)
    for sentence, number in _quoted(response.answer):
        assert " ".join(response.citations[number - 1].text.split()) == sentence
    *deltas, streamed = strong.stream(question, mode="generative")
    assert "".join(deltas) == streamed.answer == response.answer  # nothing of the decline was streamed first


@pytest.mark.parametrize("how", ["run", "stream"])
def test_a_declined_answer_is_asked_again_with_the_top_passage_unless_the_evidence_overrules_it(index, embedder, how):
    from generators.text.generative_reader import RETRY_NOTE, GenerativeReader

    sentences = SentenceReader(embedder, analyze)
    question = "What causes ocean tides?"

    def chain(overrule: float | None, generator: _ScriptedGenerator) -> AskChain:
        margin = None if overrule is None else overrule - 0.45
        return AskChain(HybridRetriever(index, embedder),
                        {"extractive": sentences, "generative": GenerativeReader(generator, retry_top_passage=True)},
                        sentences, thresholds=AbstentionThresholds(evidence={"*": 0.45}, overrule_margin=margin))

    def ask(overrule: float | None):  # noqa: ANN202
        generator = _ScriptedGenerator("The passages do not contain the answer.")
        asking = chain(overrule, generator)
        response = asking.run(question, mode="generative") if how == "run" else list(
            asking.stream(question, mode="generative"))[-1]
        return response, generator

    evidence = chain(None, _ScriptedGenerator("")).trace(question).signals["sentence"]
    declined, generator = ask(None)
    assert declined.abstained and RETRY_NOTE in declined.notes
    first, second = generator.prompts
    assert "[2]" in first and "[2]" not in second  # the second time, the top passage alone
    assert second.split("[1] ", 1)[1].split("\n\n")[0] in first.split("[1] ", 1)[1]
    quoted, generator = ask(evidence - 0.01)  # evidence strong enough to quote: no second generation
    assert not quoted.abstained and quoted.answer_type == "sentence"
    assert len(generator.prompts) == 1 and RETRY_NOTE not in quoted.notes


def test_a_how_to_answer_quotes_the_code_block_its_quoted_sentence_introduces(tmp_path, embedder, chunker):
    from generators.text.generative_reader import GenerativeReader

    docs = tmp_path / "docs"
    docs.mkdir()
    page = ("# Bodies\n\nTo expect the model under a key of its own, embed the body parameter:\n\n"
            "```Python\nitem: Annotated[Item, Body(embed=True)]\n```\n\nThe key is the parameter's name.\n")
    (docs / "bodies.md").write_text(page)
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, chunker).run([docs])
    with IndexStore(tmp_path / "idx").reader() as index:
        sentences = SentenceReader(embedder, analyze)
        reader = GenerativeReader(_ScriptedGenerator("Embed the body parameter [1]."))
        chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": reader},
                         sentences, thresholds=AbstentionThresholds(evidence={"*": 0.0}))
        question = "How do I make FastAPI expect the model under a key of its own in the body?"
        response = chain.run(question, mode="generative")
        code = "```Python\nitem: Annotated[Item, Body(embed=True)]\n```"
        assert code in response.answer, response.answer
        quote, number = response.answer.split("\n\n> ", 1)[1].split(" [", 1)
        cited = response.citations[int(number.split("]", 1)[0]) - 1]
        assert page[cited.start : cited.end] == cited.text and cited.text.startswith(quote) and cited.text.endswith(code)
        # Other kinds of question get the sentence alone; the code goes in once, not again when the answer has it.
        explained = chain.run("What does embedding the body parameter under a key of its own mean?", mode="generative")
        assert "```" not in explained.answer
        pasted = GenerativeReader(_ScriptedGenerator(f"Embed it [1]:\n\n{code}\n"))
        chain.readers["generative"] = pasted
        assert chain.run(question, mode="generative").answer.count("Body(embed=True)") == 1


def test_a_how_to_answer_shows_the_code_block_that_its_own_cited_sentence_introduces(tmp_path, embedder):
    from generators.text.generative_reader import GenerativeReader
    from ingest.chunking import Chunker

    docs = tmp_path / "docs"
    docs.mkdir()
    intro = "To expect the model under a key of its own, embed it:"
    code = "```Python\nitem: Annotated[Item, Body(embed=True)]\n```"
    page = ("# Bodies\n\nA body parameter is read from the request body. Body parameters hold the request's JSON body. "
            f"The body of a request is parsed as JSON for body parameters. {intro}\n\n{code}\n")
    (docs / "bodies.md").write_text(page)
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, Chunker(len, chunk_tokens=1000, overlap_tokens=0)).run([docs])
    with IndexStore(tmp_path / "idx").reader() as index:
        sentences = SentenceReader(embedder, analyze)
        reader = GenerativeReader(_ScriptedGenerator("Embed the model under a key of its own [1]."))
        chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": reader},
                         sentences, thresholds=AbstentionThresholds(evidence={"*": 0.0}), evidence_quotes=0)
        question = "How do I read the request body into a body parameter?"
        trace = chain.trace(question, mode="generative")
        passages = [ReaderPassage(p.chunk_id, p.text, p.start) for p in trace.passages]
        best = [" ".join(s.text.split()) for s in sentences.rank_sentences(question, passages, top_k=3)]
        assert intro not in best  # neither quoted nor among the best supporting sentences: the answer cites it
        quote = trace.response.answer.split("\n\n> ", 1)[1]
        assert quote.startswith(f"{intro} [") and quote.endswith(f"]\n\n{code}"), trace.response.answer


def test_a_yes_no_answer_quotes_the_sentence_that_says_what_does_not_hold(tmp_path, embedder, chunker):
    from generators.text.generative_reader import GenerativeReader

    docs = tmp_path / "docs"
    docs.mkdir()
    page = ("# Token URL\n\nThe `tokenUrl` parameter of `OAuth2PasswordBearer` names the URL of the token endpoint. "
            "The token endpoint URL given in `tokenUrl` is relative, like `./token`. "
            "The docs page shows the token endpoint URL from `tokenUrl`. "
            "This parameter doesn't create that path operation, you write it yourself.\n")
    (docs / "token.md").write_text(page)
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, chunker).run([docs])
    negation = "This parameter doesn't create that path operation, you write it yourself."
    with IndexStore(tmp_path / "idx").reader() as index:
        sentences = SentenceReader(embedder, analyze)
        reader = GenerativeReader(_ScriptedGenerator("The token URL is relative [1]."))
        chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": reader},
                         sentences, thresholds=AbstentionThresholds(evidence={"*": 0.0}), evidence_quotes=1)
        for question, negation_quoted in [("Does tokenUrl in OAuth2PasswordBearer create the token endpoint?", True),
                                          ("What is tokenUrl in OAuth2PasswordBearer for the token endpoint?", False)]:
            trace = chain.trace(question, mode="generative")
            passages = [ReaderPassage(p.chunk_id, p.text, p.start) for p in trace.passages]
            ranked = [" ".join(s.text.split()) for s in sentences.rank_sentences(question, passages, top_k=10)]
            assert ranked[0] != negation  # similarity alone would quote another sentence first
            quoted = [sentence for sentence, _ in _quoted(trace.response.answer)]
            assert (quoted == [negation]) is negation_quoted, (question, quoted)


def test_quotes_show_sentences_without_inline_html_and_skip_what_a_chinese_answer_already_says(tmp_path, embedder):
    from generators.text.generative_reader import GenerativeReader
    from ingest.chunking import Chunker

    docs = tmp_path / "docs"
    docs.mkdir()
    said = "FastAPI 会把依赖项的返回值进行「缓存」，并把它传递给同一请求中所有需要它的依赖项。"
    other = "如果多个依赖项共用一个子依赖项，FastAPI 在处理同一请求时，只调用一次该子依赖项。"
    marked_up = said.replace("「缓存」", '<dfn title="用于存储已计算的值的系统">「缓存」</dfn>')
    page = f"# 依赖项缓存\n\n{other}\n\n{marked_up}\n\n<abbr title=\"Object Relational Mapper\">ORM</abbr> 对象可以作为依赖项的返回值。\n"
    (docs / "deps.md").write_text(page, encoding="utf-8")
    one_chunk = Chunker(len, chunk_tokens=1000, overlap_tokens=0)  # characters as tokens: the page is one passage
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, one_chunk).run([docs])
    with IndexStore(tmp_path / "idx").reader() as index:
        sentences = SentenceReader(embedder, analyze)
        reader = GenerativeReader(_ScriptedGenerator(f"{said[:-1]} [1]。"))
        chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": reader},
                         sentences, thresholds=AbstentionThresholds(evidence={"*": 0.0}), evidence_quotes=3)
        response = chain.run("两个依赖项都依赖同一个 get_db，一次请求里 get_db 会被调用两次吗？", mode="generative")
        quoted = [sentence for sentence, _ in _quoted(response.answer)]
        assert other in quoted and "ORM 对象可以作为依赖项的返回值。" in quoted, (response.answer, response.notes)
        assert not any("缓存" in sentence for sentence in quoted)  # the answer says it already, without the markup
        assert "<" not in response.answer
        for sentence, number in _quoted(response.answer):  # citations keep the exact source text, markup included
            cited = response.citations[number - 1]
            assert page[cited.start : cited.end] == cited.text and "".join(sentence.split()) in "".join(
                cited.text.replace('<abbr title="Object Relational Mapper">', "").replace("</abbr>", "").split())


@pytest.mark.parametrize("evidence_quotes", [0, 1, 2])
def test_a_generated_answer_quotes_as_many_supporting_sentences_as_asked(index, embedder, evidence_quotes):
    from generators.text.generative_reader import GenerativeReader

    sentences = SentenceReader(embedder, analyze)
    reader = GenerativeReader(_ScriptedGenerator("Tides come from the Moon [1]."))
    chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": reader}, sentences,
                     thresholds=GATE, evidence_quotes=evidence_quotes)
    trace = chain.trace("What causes ocean tides?", mode="generative")
    passages = [ReaderPassage(p.chunk_id, p.text, p.start) for p in trace.passages]
    ranked = sentences.rank_sentences("What causes ocean tides?", passages, top_k=50)
    best = list(dict.fromkeys(" ".join(s.text.split()) for s in ranked))  # overlapping chunks repeat a sentence
    assert len(best) >= 2
    quoted = [sentence for sentence, _ in _quoted(trace.response.answer)]
    assert quoted == best[:evidence_quotes]  # the best supporting sentences, best first, none said twice


def test_a_quote_the_answer_already_says_gives_its_place_to_the_next_best_sentence(index, embedder):
    from generators.text.generative_reader import GenerativeReader

    sentences = SentenceReader(embedder, analyze)
    question = "What causes ocean tides?"
    probe = AskChain(HybridRetriever(index, embedder), {"extractive": sentences}, sentences, thresholds=GATE)
    passages = [ReaderPassage(p.chunk_id, p.text, p.start) for p in probe.trace(question).passages]
    best = list(dict.fromkeys(" ".join(s.text.split()) for s in sentences.rank_sentences(question, passages, top_k=50)))
    reader = GenerativeReader(_ScriptedGenerator(f"{best[0][:-1]} [1]."))  # the answer is the best sentence itself
    chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences, "generative": reader}, sentences,
                     thresholds=GATE, evidence_quotes=1)
    quoted = [sentence for sentence, _ in _quoted(chain.run(question, mode="generative").answer)]
    assert quoted == [best[1]]


def test_the_chain_scores_sentences_with_the_vectors_stored_at_ingest(index, embedder):
    counting = CountingEmbedder(embedder)
    sentences = SentenceReader(counting, analyze)
    chain = AskChain(HybridRetriever(index, embedder), {"extractive": sentences}, sentences, thresholds=GATE)
    response = chain.run("What causes ocean tides?")
    assert response.answer and response.citations
    assert counting.calls == []  # no passage sentence was embedded while answering


def test_readers_get_the_header_of_a_table_continued_from_an_earlier_chunk():
    from ingest.chunking import Chunker
    from ingest.loaders import load_bytes
    from rag.chain import reader_passages
    from rag.retriever import RetrievedPassage

    rows = "\n".join(f"| region-{n} | {n}.50 EUR | shipped in {n % 5 + 1} days by courier |" for n in range(60))
    text = f"# Rates\n\n| Region | Price | Delivery |\n|---|---|---|\n{rows}\n"
    doc = load_bytes(Path("rates.md"), text.encode())
    chunks = Chunker(lambda t: len(t.split()), chunk_tokens=120, overlap_tokens=0).split(doc)  # words as tokens
    later = [c for c in chunks if c.text.startswith("| region-")]
    assert later, "the table was not split across chunks"
    retrieved = [RetrievedPassage(c.seq, "d", "rates.md", None, c.heading, None, c.start, c.end, c.text, 1.0, 1, 1)
                 for c in (chunks[0], later[-1])]
    first, continued = reader_passages(retrieved)
    assert first.table_header is None  # its own text starts with the header
    assert continued.table_header == "| Region | Price | Delivery |\n|---|---|---|"
