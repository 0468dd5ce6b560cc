from __future__ import annotations

import numpy as np

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


def test_neighbour_windows_stay_inside_their_document():
    from index.bm25 import neighbour_windows

    terms = [["a"], ["b"], ["c"], ["x"], ["y"]]
    assert neighbour_windows(terms, ["d1", "d1", "d1", "d2", "d3"]) == [
        ["a", "b"], ["a", "b", "c"], ["b", "c"], ["x"], ["y"],
    ]


def test_a_question_split_across_a_chunk_boundary_finds_the_passage():
    # The answer's passage says "aurora" in one chunk and "magnetosphere" in the next; a decoy
    # chunk elsewhere holds "aurora" once in a shorter text. Chunk-only ranking puts the decoy first.
    texts = ["the aurora glows green over the northern sky tonight", "because the magnetosphere channels solar wind",
             "aurora borealis", "bees make honey"]
    ids, docs = [1, 2, 3, 4], ["story", "story", "decoy", "bees"]
    terms = [analyze(t) for t in texts]
    chunks_only = BM25Index.build(ids, terms)
    assert chunks_only.search("aurora magnetosphere", 3)[0][0] in (2, 3)
    with_windows = BM25Index.build(ids, terms, docs)
    found, scores = with_windows.search("aurora magnetosphere", 3)
    assert set(found[:2].tolist()) == {1, 2} and found[2] == 3
    assert list(scores) == sorted(scores, reverse=True)
    # Filters hold for both rankings, and chunks sharing no term are still left out.
    assert with_windows.search("aurora magnetosphere", 3, allowed_ids=np.array([3, 4]))[0].tolist() == [3]
    assert with_windows.search("honey", 5)[0].tolist() == [4]


def test_windows_survive_save_and_load(tmp_path):
    terms = [analyze("alpha beta"), analyze("gamma delta"), analyze("epsilon")]
    index = BM25Index.build([1, 2, 3], terms, ["d", "d", "e"])
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert (tmp_path / "bm25" / "windows").is_dir()
    assert loaded.search("alpha delta", 3)[0].tolist() == index.search("alpha delta", 3)[0].tolist()
