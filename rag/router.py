"""The task router: which generator should serve a chat request.

An explicit `task` wins. Otherwise an image in the message means "caption it";
a request to make a video, to draw or paint an image, to classify, summarise or
continue given text goes to that generator; anything else (questions above
all) goes to the RAG chain. English and Chinese, by patterns: cheap, exact to
explain, and measured on a labelled set (`tests/rag/data/router_prompts.jsonl`,
`bench/router_accuracy.py`).

A question *about* a task ("How do I draw a diagram in Markdown?") is a
question for the documents, not a request to draw: requests are imperatives or
wishes ("draw", "can you draw", "I want a picture of"), so a leading question
word sends the text to the chain unless a request form follows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Task = Literal["qa", "image", "caption", "video", "classify", "summarize", "complete"]
TASKS: tuple[Task, ...] = ("qa", "image", "caption", "video", "classify", "summarize", "complete")


@dataclass(frozen=True)
class Route:
    task: Task
    reason: str


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# Polite or wishful request forms: what a request to *do* something starts with.
_REQUEST = _any(
    r"^\s*(?:please\s+|pls\s+|kindly\s+)?(?:can|could|would|will)\s+you\b",
    r"^\s*(?:please|pls|kindly)\b",
    r"^\s*i(?:'d| would)?\s+(?:like|want|need)\b",
    r"^\s*(?:let'?s|help me)\b",
    r"^\s*(?:请|麻烦|帮我|帮忙|给我|我想|我要|我需要|能不能|可以|能否|你能)",
)
_QUESTION = _any(
    r"^\s*(?:how|what|why|where|when|who|whom|which|whose|is|are|was|were|does|do|did|should|has|have)\b",
    r"(?:如何|怎么|怎样|为什么|为何|什么|哪|谁|是否|有没有|多少|几点|几天)",
    r"[吗呢][？?]?\s*$",
)
# Text handed over to work on: after a colon, or in quotes ("Is this review positive? 'Cold food.'").
_GIVEN_TEXT = _any(r"[:：]\s*\S", r"[\"“'‘「].{2,}?[\"”'’」]")

_VIDEO = _any(
    r"\b(?:make|create|generate|render|produce|animate|film|shoot)\b.{0,60}\b(?:video|clip|animation|movie|gif)s?\b",
    r"\b(?:video|clip|animation|movie)s?\s+(?:of|showing|about|where|in which)\b",
    r"\banimate\b",
    r"(?:生成|制作|做|拍|创作|渲染|来|要).{0,20}(?:视频|短片|动画|影片)",
    r"(?:一段|一个|一部|一支).{0,20}(?:视频|短片|动画|影片)",
    r"(?:视频|短片|动画)[:：]",
)
_IMAGE = _any(
    r"\b(?:draw|paint|sketch|illustrate|doodle)\b",
    r"\b(?:make|create|generate|render|produce|design)\b.{0,60}\b(?:image|picture|photo|illustration|painting|drawing|"
    r"logo|icon|poster|wallpaper|artwork|portrait)s?\b",
    r"\b(?:image|picture|photo|illustration|painting|portrait)s?\s+of\b",
    r"(?:画|绘制|绘画|描绘|素描)",
    r"(?:生成|制作|做|设计|创作|渲染|来|要).{0,20}(?:图|图片|图像|照片|插画|海报|壁纸|头像|标志|logo)",
    r"(?:一张|一幅|一副).{0,20}(?:图|图片|图像|照片|插画|海报|壁纸|画)",
)
_CLASSIFY = _any(
    r"\b(?:classify|categori[sz]e|label|tag|sort)\b",
    r"\bsentiment\b",
    r"\bpositive\s+or\s+negative\b",
    r"\b(?:is|are)\s+(?:this|these|the following)\s+(?:review|comment|tweet|text|message)s?\s+(?:positive|negative)",
    r"(?:分类|归类|情感|情绪|打标签|正面还是负面|积极还是消极|好评还是差评|正面或负面)",
    r"(?:分成|分为|划分为?).{0,20}(?:类|正面|负面|积极|消极)",
)
_SUMMARIZE = _any(
    r"\b(?:summari[sz]e|summary|summarization|tl;?dr|condense|sum up|recap|boil down|key points)\b",
    r"(?:总结|摘要|概括|归纳|概述|缩写成)",
    r"(?:提炼|列出|给出).{0,12}(?:要点|重点)",
)
_COMPLETE = _any(
    r"\bcontinue\b.{0,40}\b(?:text|story|sentence|paragraph|poem|writing|this|following|where)\b",
    r"\b(?:complete|finish)\s+(?:this|the|my)\s+(?:text|story|sentence|paragraph|poem|line)\b",
    r"\bkeep (?:writing|going)\b",
    r"\bwhat comes next\b",
    r"(?:续写|接着写|继续写|补全|往下写|写下去)",
)

# In order: the first that matches wins (a video of someone painting is a video).
_TASK_PATTERNS: tuple[tuple[Task, re.Pattern[str]], ...] = (
    ("video", _VIDEO),
    ("image", _IMAGE),
    ("classify", _CLASSIFY),
    ("summarize", _SUMMARIZE),
    ("complete", _COMPLETE),
)


class TaskRouter:
    """`route(text, has_image=..., task=...)` → the task and why."""

    def route(self, text: str, *, has_image: bool = False, task: str | None = None) -> Route:
        if task:
            if task not in TASKS:
                raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
            return Route(task, "the request named its task")  # type: ignore[arg-type]
        if has_image:
            return Route("caption", "the message holds an image")
        text = text.strip()
        # A question about a task is for the documents; a question about given text is a task.
        question = bool(_QUESTION.search(text)) and not _REQUEST.search(text) and not _GIVEN_TEXT.search(text)
        for name, pattern in _TASK_PATTERNS:
            match = pattern.search(text)
            if match and not question:
                return Route(name, f"asks for {name}: {match.group(0).strip()!r}")
        return Route("qa", "a question for the documents" if question else "no other task asked for")


_QUOTED = re.compile(r"[\"“'‘「](.{2,}?)[\"”'’」]", re.DOTALL)
_AFTER_COLON = re.compile(r"[:：]\s*(\S.*)", re.DOTALL)


def given_text(text: str) -> str:
    """The text a task request hands over: after its first colon, else its first quotation, else all of it."""
    after = _AFTER_COLON.search(text)
    if after:
        return after.group(1).strip()
    quoted = _QUOTED.search(text)
    return quoted.group(1).strip() if quoted else text.strip()
