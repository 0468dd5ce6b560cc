"""Watched folders: keep an index in step with files as they are added, changed, moved or deleted.

Each burst of file events (gathered for `debounce_ms` by `watchfiles`) is followed by one incremental
ingest of the watched folders with pruning: unchanged files are skipped by their hash, a moved file's
chunks are found again by their text (nothing re-embedded), a deleted file's chunks go. Every sync is
an ordinary ingest, so it commits whole generations: a crash leaves the last commit readable, and
whoever serves answers keeps the snapshot it has until the next commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ingest.pipeline import IngestReport

log = logging.getLogger(__name__)

INSTALL_HINT = "watching folders needs the `watchfiles` package: pip install 'watchfiles>=1'"


def relevant_change(path: str, roots: Sequence[Path], ignore: Sequence[Path]) -> bool:
    """Is a changed path one the ingest would look at: not under an ignored folder, and nothing hidden below
    the watched folder that holds it (the ingest skips hidden files and folders by default)?"""
    changed = Path(path)
    if any(changed == folder or folder in changed.parents for folder in ignore):
        return False
    for root in roots:
        if changed == root or root in changed.parents:
            return not any(part.startswith(".") for part in changed.relative_to(root).parts)
    return False


def watch_folders(
    paths: Sequence[Path],
    sync: Callable[[], IngestReport],
    *,
    ignore: Sequence[Path] = (),
    debounce_ms: int = 1600,
    stop: threading.Event | None = None,
    on_report: Callable[[IngestReport], None] | None = None,
) -> None:
    """Sync once, then after every burst of relevant changes under `paths`, until `stop` is set.

    `ignore`: folders whose changes never trigger a sync (the index itself, when it lives inside a watched
    folder). A sync that raises is logged and the watch goes on: the next change tries again.
    """
    try:
        import watchfiles
    except ImportError as exc:
        raise RuntimeError(INSTALL_HINT) from exc
    roots = [Path(p).resolve() for p in paths]
    ignored = [Path(p).resolve() for p in ignore]

    def run_sync() -> None:
        try:
            report = sync()
        except Exception:  # noqa: BLE001 - a watch that stops on one bad sync would leave the index stale
            log.exception("Sync of the watched folders failed; trying again on the next change")
            return
        if on_report is not None:
            on_report(report)

    run_sync()
    for changes in watchfiles.watch(*roots, debounce=debounce_ms, stop_event=stop, raise_interrupt=False,
                                    recursive=True):
        if any(relevant_change(path, roots, ignored) for _, path in changes):
            log.info("%s changes in the watched folders: syncing", len(changes))
            run_sync()
