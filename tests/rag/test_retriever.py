"""Query and reply language of the retriever module."""



def test_a_chinese_question_about_english_names_is_answered_in_chinese():
    from rag.retriever import query_language, reply_language

    question = "后台任务该用 BackgroundTasks 还是 Celery？"
    assert query_language(question) == "en"  # most letters are Latin: the English thresholds and models serve it
    assert reply_language(question) == "zh"  # but whoever asked it reads Chinese
    assert reply_language("Should I use BackgroundTasks or Celery?") == "en"
