from __future__ import annotations

import pytest

from rag.evaluation.metrics import contains_answer, exact_match, f1_score, normalize_en, percentile, segment_zh


def test_squad_normalisation():
    assert normalize_en("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_en("an apple, a pear") == "apple pear"


def test_english_em_and_f1_follow_squad():
    assert exact_match("the Eiffel Tower", ["Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    # prediction "eiffel", gold "eiffel tower": precision 1, recall 1/2
    assert f1_score("Eiffel", ["Eiffel Tower"]) == pytest.approx(2 / 3)
    # best over answers: vs "in year 1889" common 2 → P 1, R 2/3 → F1 0.8 (vs "1889" only 0.667)
    assert f1_score("in 1889", ["1889", "in the year 1889"]) == pytest.approx(0.8)
    assert f1_score("nothing alike", ["Eiffel Tower"]) == 0.0


def test_chinese_is_scored_per_character_with_the_longest_common_run():
    assert segment_zh("北京是首都，Python 3很好。") == ["北", "京", "是", "首", "都", "python", "3", "很", "好"]
    assert exact_match("北京。", ["北京"]) == 1.0
    # prediction 北京市 (3), gold 北京 (2): common run 2 → P 2/3, R 1
    assert f1_score("北京市", ["北京"]) == pytest.approx(0.8)
    # 京北: characters shared but no common run longer than 1
    assert f1_score("京北", ["北京"]) == pytest.approx(0.5)


def test_containment_respects_word_boundaries():
    assert contains_answer("It was finished in 1889 in Paris.", ["1889"]) == 1.0
    assert contains_answer("It was finished in 18890.", ["1889"]) == 0.0
    assert contains_answer("埃菲尔铁塔于1889年建成。", ["1889年"]) == 1.0


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 95) == 5
    assert percentile([], 50) == 0.0
