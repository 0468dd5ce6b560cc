"""`GET /`: the chat page (plain HTML and JavaScript, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
PAGE = Path(__file__).resolve().parents[1] / "static" / "index.html"


@router.get("/", response_class=HTMLResponse)
def chat_page() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))
