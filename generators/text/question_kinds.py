"""What kind of answer a question asks for: yes/no, how-to, compare, explain, or a plain fact.

Readers use it to shape the answer (a yes/no question gets "Yes" or "No"
first, a how-to the steps and the code, a comparison both sides). Rules over
the question's first words and a few markers, English and Chinese; a question
that matches none is "factoid".
"""

from __future__ import annotations

import re
from typing import Literal

from common.language import has_cjk

QuestionKind = Literal["yesno", "howto", "compare", "explain", "factoid"]

_YESNO_EN = re.compile(
    r"^(?:so\s+|and\s+|but\s+|also\s+)?(?:is|are|was|were|can|could|does|do|did|should|shall|will|would|has|have|"
    r"had|may|might|must|isn't|aren't|doesn't|don't|can't|won't|shouldn't)\b", re.IGNORECASE)
_HOWTO_EN = re.compile(r"\bhow\s+(?:do|can|should|would|could|to|does|is|are)\b|\bhow\s*\?|"
                       r"\bwhat(?:'s| is) the (?:right |best |recommended )?way\b|\bwhat (?:do|should) i do\b|"
                       r"\bsteps?\s+to\b|^(?:show|tell)\s+me\s+how\b", re.IGNORECASE)
_COMPARE_EN = re.compile(r"(?i:\b(?:difference|differences|differ|versus|compared?|comparison|rather than)\b|"
                         r"\bwhich (?:one|is|should)\b|\bwhen should i use\b)|\bvs\.?\s")
_EXPLAIN_EN = re.compile(r"^(?:why|explain|what happens|what does .* mean|what is the (?:purpose|point|role))\b|"
                         r"\bwhy\b|\bwhat happens\b|\bkeeps? failing\b|\bwhat's going on\b", re.IGNORECASE)
_YESNO_ZH = re.compile(r"(?:吗|么)\s*(?:[？?]|$)|是否|能否|可否|可不可以|能不能|是不是|会不会|有没有|要不要")
_HOWTO_ZH = re.compile(r"如何|怎么|怎样|怎麼|步骤")
_COMPARE_ZH = re.compile(r"区别|差别|不同|比较|对比|还是")
_EXPLAIN_ZH = re.compile(r"为什么|为何|原因|解释|作用|是什么意思")


# The rules in the order they are tried; the first that matches decides. In English a yes/no question is told
# by how one of its clauses starts (see `question_kind`), so it has no entry here.
_CHINESE_RULES: tuple[tuple[re.Pattern[str], QuestionKind], ...] = (
    (_COMPARE_ZH, "compare"), (_HOWTO_ZH, "howto"), (_YESNO_ZH, "yesno"), (_EXPLAIN_ZH, "explain"))
_ENGLISH_RULES: tuple[tuple[re.Pattern[str], QuestionKind], ...] = (
    (_COMPARE_EN, "compare"), (_EXPLAIN_EN, "explain"))


def question_kind(question: str) -> QuestionKind:
    """The kind of answer `question` asks for."""
    text = question.strip()
    if has_cjk(text):
        return next((kind for rule, kind in _CHINESE_RULES if rule.search(text)), "factoid")
    if _HOWTO_EN.search(text):
        return "howto"
    # Any clause may carry the question: "If I do X, will it Y?", "I did X. Can I do Y?"
    clauses = [c.strip() for c in re.split(r"(?<=[.?!,;:])\s+", text) if c.strip()]
    if any(_YESNO_EN.match(c) for c in clauses):
        return "yesno"
    return next((kind for rule, kind in _ENGLISH_RULES if rule.search(text)), "factoid")
