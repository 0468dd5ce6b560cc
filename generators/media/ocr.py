"""Text from pictures of text: RapidOCR (PP-OCR detection and recognition, Chinese and English).

The models ship inside the `rapidocr` wheel, so OCR works offline. Lines come
back in reading order: top to bottom, left to right within a row, with a blank
line where the gap between rows says a new paragraph starts.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

INSTALL_HINT = "OCR needs the `rapidocr` package: pip install 'rapidocr>=3.10'"


@dataclass(frozen=True)
class OcrLine:
    text: str
    score: float
    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class OcrResult:
    lines: list[OcrLine]  # in reading order
    text: str  # the lines joined: a row's lines by a space, rows by a newline, paragraphs by a blank line


def reading_order(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Rows of lines, top to bottom; a line joins a row when it overlaps the row's height by half its own."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda item: (item.top, item.left)):
        if rows:
            row = rows[-1]
            top = min(item.top for item in row)
            bottom = max(item.bottom for item in row)
            overlap = min(bottom, line.bottom) - max(top, line.top)
            if overlap >= 0.5 * (line.bottom - line.top):
                row.append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda item: item.left) for row in rows]


def join_rows(rows: list[list[OcrLine]]) -> str:
    """The text of rows: a blank line where the gap above a row is more than its height (a new paragraph)."""
    parts: list[str] = []
    previous_bottom: float | None = None
    for row in rows:
        top = min(item.top for item in row)
        height = max(item.bottom for item in row) - top
        if previous_bottom is not None:
            parts.append("\n\n" if top - previous_bottom > height else "\n")
        parts.append(" ".join(item.text for item in row))
        previous_bottom = max(item.bottom for item in row)
    return "".join(parts)


class ImageTextReader:
    """OCR of one image at a time (RapidOCR on onnxruntime); lines below `min_score` are left out.

    `engine_params` go to RapidOCR as they are (its `params`), e.g. other model files.
    """

    def __init__(self, *, min_score: float = 0.5, engine_params: dict | None = None) -> None:
        self.min_score = min_score
        self.engine_params = dict(engine_params or {})
        self._engine = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._engine is not None:
                return
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:
                raise RuntimeError(INSTALL_HINT) from exc
            # RapidOCR logs every model file it opens at INFO; ours say what matters.
            logging.getLogger("RapidOCR").setLevel(logging.WARNING)
            # No angle classifier: document lines are upright, and it turned some of them upside down (garbage).
            self._engine = RapidOCR(params={"Global.use_cls": False, "Global.log_level": "warning",
                                            **self.engine_params})

    def run(self, image: Image | np.ndarray) -> OcrResult:
        self.warm_up()
        picture = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
        output = self._engine(picture)
        lines: list[OcrLine] = []
        if output.txts:
            for text, score, box in zip(output.txts, output.scores, output.boxes, strict=True):
                text = text.strip()
                if not text or score < self.min_score:
                    continue
                xs, ys = box[:, 0], box[:, 1]
                lines.append(OcrLine(text, float(score), float(xs.min()), float(ys.min()), float(xs.max()),
                                     float(ys.max())))
        rows = reading_order(lines)
        return OcrResult([line for row in rows for line in row], join_rows(rows))


@lru_cache(maxsize=1)
def shared_reader() -> ImageTextReader:
    """One OCR engine per process (its models take a second to load), made on first use."""
    return ImageTextReader()
