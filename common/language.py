"""Which script a text is written in: the CJK ideograph blocks, and the language a question is asked in."""

from __future__ import annotations

import re

# Character-class body of the CJK ideograph blocks: Extension A, Unified Ideographs, Compatibility Ideographs.
CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_CHAR = re.compile(f"[{CJK_CHARS}]")
_LETTER = re.compile(r"[^\W\d_]")


def has_cjk(text: str) -> bool:
    """Does `text` hold any CJK ideograph?"""
    return CJK_CHAR.search(text) is not None


def query_language(text: str) -> str:
    """"zh" when most letters of `text` are CJK ideographs, else "en" (the languages the defaults serve)."""
    letters = len(_LETTER.findall(text))
    return "zh" if letters and len(CJK_CHAR.findall(text)) / letters > 0.3 else "en"


def reply_language(text: str) -> str:
    """The language to answer `text` in: "zh" when it holds any CJK ideograph (a Chinese sentence about
    `BackgroundTasks` and Celery is still Chinese, though most of its letters are Latin), else "en"."""
    return "zh" if has_cjk(text) else "en"
