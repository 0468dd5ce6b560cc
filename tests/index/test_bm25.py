from __future__ import annotations

from index.bm25 import BM25Index, analyze


def test_english_terms_are_stemmed_and_stopworded():
    assert analyze("The running dogs and the barking!") == ["run", "dog", "bark"]


def test_chinese_is_segmented_into_words():
    terms = analyze("北京大学的学生喜欢自然语言处理")
    assert "北京" in terms and "大学" in terms and "学生" in terms and "语言" in terms
    assert "的" not in terms


def test_mixed_language_text():
    terms = analyze("FastAPI 使用 Pydantic 校验数据")
    assert "fastapi" in terms and "pydant" in terms and "数据" in terms


def test_search_ranks_matching_chunks_and_skips_non_matching():
    texts = ["honey bees dance", "tides follow the moon", "bees make honey from nectar", "数据库 索引 查询"]
    index = BM25Index.build([10, 20, 30, 40], [analyze(t) for t in texts])
    ids, scores = index.search("honey bees", 10)
    assert set(ids.tolist()) == {10, 30} and all(scores > 0)
    ids, _ = index.search("索引查询", 10)
    assert ids.tolist() == [40]
    assert index.search("unrelated words entirely", 10)[0].size == 0


def test_save_and_load_round_trip(tmp_path):
    index = BM25Index.build([1, 2], [analyze("alpha beta"), analyze("gamma delta")])
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded.search("gamma", 5)[0].tolist() == [2]
    empty = BM25Index.build([], [])
    empty.save(tmp_path / "empty")
    assert len(BM25Index.load(tmp_path / "empty")) == 0


def test_chinese_runs_also_give_character_bigrams():
    from index.bm25 import BIGRAM_MARK

    terms = analyze("自然语言处理")
    bigrams = [t for t in terms if t.startswith(BIGRAM_MARK)]
    assert bigrams == [BIGRAM_MARK + b for b in ("自然", "然语", "语言", "言处", "处理")]
    assert "自然语言" in terms or "语言" in terms  # jieba's words are still there
    assert not any(t.startswith(BIGRAM_MARK) for t in analyze("natural language processing"))


def test_a_differently_segmented_word_still_matches_through_bigrams():
    index = BM25Index.build([1, 2], [analyze("研究人员在南极洲发现了新的企鹅栖息地。"), analyze("上海的天气很潮湿。")])
    ids, _ = index.search("南极企鹅", k=2)
    assert list(ids[:1]) == [1]
