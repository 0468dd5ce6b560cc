from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from generators.text.qa_reader import ExtractiveReader, best_token_spans
from generators.text.reading import ReaderPassage
from generators.resolve import ModelUnavailableError


def test_best_span_is_the_highest_joint_probability_inside_the_context():
    start = np.array([9.0, 0.0, 5.0, 0.0, 0.0, 0.0])
    end = np.array([9.0, 0.0, 0.0, 4.0, 6.0, 0.0])
    context = np.array([False, False, True, True, True, True])  # token 0 is [CLS]/question: never an answer
    spans = best_token_spans(start, end, context, max_answer_tokens=5, top_n=3)
    assert (spans[0].start, spans[0].end) == (2, 4)
    assert spans[0].score == pytest.approx(max(s.score for s in spans))
    assert all(context[s.start] and context[s.end] and s.end >= s.start for s in spans)


def test_best_span_respects_the_maximum_answer_length():
    start = np.array([0.0, 8.0, 0.0, 0.0, 0.0])
    end = np.array([0.0, 0.0, 0.0, 0.0, 8.0])
    context = np.ones(5, dtype=bool)
    spans = best_token_spans(start, end, context, max_answer_tokens=2, top_n=10)
    assert spans and all(s.end - s.start < 2 for s in spans)


def test_end_before_start_is_never_chosen():
    start = np.array([0.0, 0.0, 0.0, 9.0])
    end = np.array([9.0, 0.0, 0.0, 0.0])
    spans = best_token_spans(start, end, np.ones(4, dtype=bool), max_answer_tokens=4, top_n=10)
    assert all(s.end >= s.start for s in spans)
    assert best_token_spans(start, end, np.zeros(4, dtype=bool), max_answer_tokens=4) == []


def test_random_tiny_model_loads_and_spans_map_to_document_offsets(tiny_qa_model_dir):
    reader = ExtractiveReader(str(tiny_qa_model_dir), max_seq_len=64, stride=16, batch_size=3)
    document = "Preface text. " * 5 + "The Eiffel Tower was finished in 1889 in Paris, France. " * 8
    offset = 70
    passages = [ReaderPassage(11, document[offset:], offset), ReaderPassage(12, "Short other passage.", 0)]
    result = reader.run("When was the Eiffel Tower finished?", passages, top_k=3)
    assert result.answer_type == "span" and result.spans
    assert result.answer == result.spans[0].text and result.confidence == result.spans[0].score
    for span in result.spans:
        source = document if span.key == 11 else "Short other passage."
        assert source[span.start : span.end] == span.text
        assert len(reader.tokenizer.tokenize(span.text)) <= reader.max_answer_tokens
    # The answer is the candidate with the highest start + end logit (rank weight 0: passage order ignored).
    candidates = reader.candidates("When was the Eiffel Tower finished?", passages)
    best = max(candidates, key=lambda c: c.logit)
    assert result.spans[0].text == passages[best.passage].text[best.start : best.end].strip()
    assert result.confidence == pytest.approx(best.probability)
    # Deterministic: the same question over the same passages gives the same spans.
    assert reader.run("When was the Eiffel Tower finished?", passages, top_k=3) == result


class _PointsAtWord(torch.nn.Module):
    """Stands in for a QA model: start and end logits peak on given token ids (tests decoding, not quality)."""

    def __init__(self, token_id: int, logit: float = 20.0, **more: float) -> None:
        super().__init__()
        self.logits = {token_id: logit, **{int(k): v for k, v in more.items()}}

    def forward(self, input_ids, attention_mask=None, **_):
        hit = torch.zeros_like(input_ids, dtype=torch.float)
        for token_id, logit in self.logits.items():
            hit = hit + (input_ids == token_id).float() * logit
        return SimpleNamespace(start_logits=hit, end_logits=hit)


def test_spans_of_several_passages_rank_by_logit_less_the_passage_rank_penalty(tiny_qa_model_dir):
    reader = ExtractiveReader(str(tiny_qa_model_dir), max_seq_len=64, stride=16)
    reader.warm_up()
    paris, lyon = (reader.tokenizer.convert_tokens_to_ids(word) for word in ("paris", "lyon"))
    # Each window's softmax makes both spans near-certain (p ≈ 1): only the logits tell them apart.
    reader._model = _PointsAtWord(paris, 20.0, **{str(lyon): 18.0})
    passages = [ReaderPassage(1, "The office moved to Lyon last year.", 0),
                ReaderPassage(2, "The office moved to Paris last year.", 0)]
    candidates = {passages[c.passage].text[c.start : c.end]: c for c in reader.candidates("Where?", passages)}
    assert candidates["Paris"].logit == pytest.approx(40.0) and candidates["Lyon"].logit == pytest.approx(36.0)
    assert candidates["Paris"].probability > 0.99 and candidates["Lyon"].probability > 0.99
    assert reader.run("Where?", passages).answer == "Paris"  # weight 0: the higher logit wins
    reader.passage_rank_weight = 5.0  # 36 - 0·5 > 40 - 1·5: the first passage's span wins
    result = reader.run("Where?", passages, top_k=2)
    assert result.answer == "Lyon" and [s.key for s in result.spans] == [1, 2]
    assert result.confidence == pytest.approx(candidates["Lyon"].probability)


def test_answer_in_a_late_window_of_a_long_passage_maps_back_exactly(tiny_qa_model_dir):
    reader = ExtractiveReader(str(tiny_qa_model_dir), max_seq_len=48, stride=12, batch_size=2)
    reader.warm_up()
    target = reader.tokenizer.convert_tokens_to_ids("paris")
    reader._model = _PointsAtWord(target)
    filler = "The tower stands on the field and draws many visitors every year. " * 12
    text = filler + "It is located in Paris near the river. " + filler
    document = "HEADER\n" + text
    result = reader.run("Where is it located?", [ReaderPassage(5, text, len("HEADER\n"))], top_k=1)
    assert result.answer == "Paris"
    span = result.spans[0]
    assert document[span.start : span.end] == "Paris" and span.start == document.index("Paris")


def test_long_questions_are_clipped_not_rejected(tiny_qa_model_dir):
    reader = ExtractiveReader(str(tiny_qa_model_dir), max_seq_len=64, stride=16, max_question_tokens=8)
    result = reader.run("why " * 200 + "?", [ReaderPassage(1, "Some context about things. " * 10, 0)])
    assert result.spans


def test_no_passages_gives_an_empty_answer(tiny_qa_model_dir):
    result = ExtractiveReader(str(tiny_qa_model_dir)).run("anything?", [ReaderPassage(1, "   ", 0)])
    assert result.answer == "" and result.spans == []


def test_unresolvable_model_names_the_setting():
    reader = ExtractiveReader("no-such-org/no-such-reader", setting="RAG_READER__MODEL")
    with pytest.raises(ModelUnavailableError) as info:
        reader.warm_up()
    assert info.value.setting == "RAG_READER__MODEL"


def test_low_confidence_spans_widen_to_their_sentence_with_exact_offsets(tiny_qa_model_dir):
    document = "Intro line here. The Eiffel Tower was finished in 1889 in Paris. Another sentence follows it."
    passages = [ReaderPassage(7, document[5:], 5)]
    plain = ExtractiveReader(str(tiny_qa_model_dir), max_seq_len=64, stride=16)
    span = plain.run("When was the Eiffel Tower finished?", passages).spans[0]
    widened = ExtractiveReader(str(tiny_qa_model_dir), max_seq_len=64, stride=16, widen_below=1.01)
    result = widened.run("When was the Eiffel Tower finished?", passages)
    assert result.answer_type == "sentence" and result.confidence == span.score
    sentence = result.spans[0]
    assert document[sentence.start : sentence.end] == sentence.text == result.answer
    assert sentence.start <= span.start and span.end <= sentence.end  # the sentence holds the span
    assert sentence.text.endswith(".") and "widened" not in sentence.text and "sentence" in result.notes[0]
    never = ExtractiveReader(str(tiny_qa_model_dir), max_seq_len=64, stride=16, widen_below=0.0)
    assert never.run("When was the Eiffel Tower finished?", passages).answer_type == "span"


def test_onnx_int8_backend_gives_the_torch_logits_and_exact_offsets(tiny_qa_model_dir, tmp_path):
    passages = [ReaderPassage(3, "Bees dance to point at flowers. The hive follows the dance to nectar.", 100),
                ReaderPassage(4, "Tides follow the Moon, twice a day.", 500)]
    question = "How do bees point at flowers?"
    by_torch = ExtractiveReader(str(tiny_qa_model_dir))
    by_onnx = ExtractiveReader(str(tiny_qa_model_dir), backend="onnx-int8", cache_dir=tmp_path, threads=1)
    features = by_torch.tokenizer([question] * 2, [p.text for p in passages], truncation="only_second")
    features = {name: features[name] for name in by_torch.tokenizer.model_input_names if name in features}
    torch_starts, torch_ends = by_torch._logits(features)
    onnx_starts, onnx_ends = by_onnx._logits(features)
    assert by_onnx._session is not None and by_onnx._model is None  # no torch model was loaded
    options = by_onnx._session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"  # idle threads sleep
    # int8 weights and activations move a logit of the random model by little
    assert np.allclose(onnx_starts, torch_starts, atol=0.05) and np.allclose(onnx_ends, torch_ends, atol=0.05)
    result = by_onnx.run(question, passages)
    by_key = {p.key: p for p in passages}
    for span in result.spans:
        passage = by_key[span.key]
        assert passage.text[span.start - passage.offset : span.end - passage.offset] == span.text
    assert len(list(tmp_path.glob("*.qa.int8.onnx"))) == 1
