"""Classification into caller-given labels: zero-shot with the real offline embedder, and the generator path."""

from __future__ import annotations

import pytest

from generators.text.classifier import GeneratorClassifier, ZeroShotClassifier


def test_zero_shot_labels_clear_sentiment_and_counts_every_label(embedder):
    classify = ZeroShotClassifier(embedder)
    result = classify(["I love this phone, it is wonderful.", "Terrible service, I hate it.",
                       "Absolutely fantastic and delightful."], ["positive", "negative", "neutral"])
    assert [r.label for r in result.results] == ["positive", "negative", "positive"]
    assert result.counts == {"positive": 2, "negative": 1, "neutral": 0}
    assert all(0.0 < r.score <= 1.0 for r in result.results) and result.method == "zero-shot"


@pytest.mark.parametrize("texts, labels", [([], ["a", "b"]), (["x"], ["only"]), (["x"], ["same", "same "])])
def test_bad_requests_are_value_errors(embedder, texts, labels):
    with pytest.raises(ValueError):
        ZeroShotClassifier(embedder)(texts, labels)


class _Replies:
    """A generator that answers from a script (tests the parsing and the fallback, not a model)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.prompts = []

    def generate(self, messages, *, max_new_tokens=256, temperature=0.0, stop=None):
        self.prompts.append(messages)
        return self.replies.pop(0)


def test_generator_replies_are_parsed_and_unparseable_ones_fall_back(embedder):
    generator = _Replies(["Negative.", "label: POSITIVE", "I cannot tell."])
    classify = GeneratorClassifier(generator, ZeroShotClassifier(embedder))
    result = classify(["Awful.", "Lovely!", "I love it, wonderful."], ["positive", "negative"])
    assert [r.label for r in result.results] == ["negative", "positive", "positive"]
    assert result.method == "generator" and "1 of 3" in result.notes[0]
    assert "positive, negative" in generator.prompts[0][0]["content"]


def test_parse_prefers_the_first_and_whole_word_label():
    assert GeneratorClassifier.parse("not negative but positive", ["positive", "negative"]) == "negative"
    assert GeneratorClassifier.parse("positively", ["positive", "negative"]) is None


def test_extractive_summary_picks_central_sentences_in_order_with_offsets(embedder):
    from generators.text.summarizer import ExtractiveSummarizer

    text = ("Solar panels turn sunlight into electricity. The weather was nice on Tuesday. "
            "Solar power is renewable energy from the sun. Panels on roofs make solar electricity for homes. "
            "My cat likes tuna.")
    summary = ExtractiveSummarizer(embedder)(text, max_sentences=2)
    assert len(summary.sentences) == 2 and summary.method == "extractive"
    assert all(text[s.start : s.end] == s.text for s in summary.sentences)
    assert [s.start for s in summary.sentences] == sorted(s.start for s in summary.sentences)
    assert all("solar" in s.text.lower() or "panels" in s.text.lower() for s in summary.sentences)
    short = ExtractiveSummarizer(embedder)("Only one sentence here.", max_sentences=3)
    assert short.summary == "Only one sentence here."
