"""Loads each generator model once, lazily, and unloads the least recently used ones to stay under a budget.

Image, caption and video models are large and used now and then: a process
serving all of them keeps only what fits. A model in use is never unloaded
under its caller; the budget may be exceeded until that use ends.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


class ManagedModel(Protocol):
    def warm_up(self) -> None: ...

    def unload(self) -> None: ...

    def memory_bytes(self) -> int: ...


M = TypeVar("M", bound=ManagedModel)


class _Entry(Generic[M]):
    def __init__(self, factory: Callable[[], M]) -> None:
        self.factory = factory
        self.model: M | None = None
        self.users = 0
        self.load_lock = threading.Lock()


class ModelManager:
    """Named models built by factories; `use(name)` loads one (once) and holds it while the block runs."""

    def __init__(self, budget_bytes: int | None = None) -> None:
        self.budget_bytes = budget_bytes  # None: never unload
        self._entries: dict[str, _Entry] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()  # loaded models, least recently used first
        self._lock = threading.Lock()

    def register(self, name: str, factory: Callable[[], ManagedModel]) -> None:
        """Declare a model; its factory must be cheap (loading happens in `warm_up`)."""
        with self._lock:
            self._entries[name] = _Entry(factory)

    def model(self, name: str) -> ManagedModel:
        """The model object (built on first call, not loaded): for resolution checks and settings."""
        entry = self._entry(name)
        with entry.load_lock:
            if entry.model is None:
                entry.model = entry.factory()
            return entry.model

    @contextmanager
    def use(self, name: str) -> Iterator[ManagedModel]:
        entry = self._entry(name)
        model = self.model(name)
        with self._lock:
            entry.users += 1
        try:
            with entry.load_lock:
                model.warm_up()
            with self._lock:
                self._recent[name] = None
                self._recent.move_to_end(name)
            self._evict(keep=name)
            yield model
        finally:
            with self._lock:
                entry.users -= 1

    def loaded(self) -> dict[str, int]:
        """Loaded models and their bytes, least recently used first."""
        with self._lock:
            names = list(self._recent)
        return {name: self._entries[name].model.memory_bytes() for name in names}

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"no model registered as {name!r}; registered: {', '.join(sorted(self._entries))}") from None

    def _evict(self, *, keep: str) -> None:
        if self.budget_bytes is None:
            return
        with self._lock:
            sizes = {name: self._entries[name].model.memory_bytes() for name in self._recent}
            total = sum(sizes.values())
            victims = []
            for name in list(self._recent):
                if total <= self.budget_bytes:
                    break
                entry = self._entries[name]
                if name == keep or entry.users > 0:
                    continue
                victims.append((name, entry))
                total -= sizes[name]
                del self._recent[name]
        for name, entry in victims:
            with entry.load_lock:
                with self._lock:
                    # Taken up again since it was chosen: keep it. (A use that starts now waits for this
                    # lock and reloads.)
                    if entry.users > 0:
                        self._recent[name] = None
                        continue
                entry.model.unload()
            log.info("Unloaded %s (%.0f MB) to stay under the model memory budget of %.0f MB", name,
                     sizes[name] / 2**20, self.budget_bytes / 2**20)
