from __future__ import annotations

import pytest

from common.language import has_cjk, query_language, reply_language


@pytest.mark.parametrize(("text", "query", "reply"), [
    ("How do I add CORS?", "en", "en"),
    ("如何添加 CORS 中间件？", "zh", "zh"),
    ("后台任务该用 BackgroundTasks 还是 Celery？", "en", "zh"),  # mostly Latin letters: English thresholds and
    # models serve it, but whoever asked it reads Chinese
    ("什么是自然语言处理？", "zh", "zh"),
    ("What is FastAPI 的 Depends?", "en", "zh"),
    ("FastAPI 如何声明路径参数和查询参数？", "zh", "zh"),
    ("豈", "zh", "zh"),  # a compatibility ideograph
    ("12345 ???", "en", "en"),
])
def test_the_language_of_a_question_and_of_its_answer(text, query, reply):
    assert query_language(text) == query
    assert reply_language(text) == reply
    assert has_cjk(text) == (reply == "zh")
