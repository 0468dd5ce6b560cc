from __future__ import annotations

import pytest

from generators.text.question_kinds import question_kind


@pytest.mark.parametrize(("question", "kind"), [
    ("Can I use Depends in a WebSocket route?", "yesno"),
    ("If I name a parameter user_agent, will it read the User-Agent header?", "yesno"),
    ("how do I run something after the response is sent?", "howto"),
    ("I want the docs off in prod. how?", "howto"),
    ("what's the difference between Query and Path?", "compare"),
    ("How can I debug my app in VS Code?", "howto"),  # "VS Code" is no comparison
    ("why does my GET /users/me keep failing?", "explain"),
    ("What port does uvicorn use by default?", "factoid"),
    ("可以在 WebSocket 路由中使用 Depends 吗？", "yesno"),
    ("如何在响应发送后运行任务？", "howto"),
    ("Query 和 Path 有什么区别？", "compare"),
    ("为什么要用 async def？", "explain"),
])
def test_question_kinds(question, kind):
    assert question_kind(question) == kind
