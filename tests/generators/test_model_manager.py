from __future__ import annotations

import threading

import pytest

from generators.model_manager import ModelManager


class FakeModel:
    """A model whose loading is a counter: the manager's bookkeeping is what is under test."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.loads = 0
        self.unloads = 0
        self.loaded = False

    def warm_up(self) -> None:
        if not self.loaded:
            self.loads += 1
            self.loaded = True

    def unload(self) -> None:
        if self.loaded:
            self.unloads += 1
            self.loaded = False

    def memory_bytes(self) -> int:
        return self.size if self.loaded else 0


def _manager(budget: int | None, **sizes: int) -> tuple[ModelManager, dict[str, FakeModel]]:
    models = {name: FakeModel(size) for name, size in sizes.items()}
    manager = ModelManager(budget)
    for name, model in models.items():
        manager.register(name, lambda m=model: m)
    return manager, models


def test_models_load_lazily_and_once():
    manager, models = _manager(None, image=10, caption=5)
    assert manager.loaded() == {} and not models["image"].loaded
    for _ in range(3):
        with manager.use("image") as model:
            assert model is models["image"] and model.loaded
    assert models["image"].loads == 1 and models["caption"].loads == 0
    assert manager.loaded() == {"image": 10}


def test_least_recently_used_models_are_unloaded_to_fit_the_budget():
    manager, models = _manager(20, image=10, caption=5, video=12)
    with manager.use("image"):
        pass
    with manager.use("caption"):
        pass
    with manager.use("image"):  # image is now the most recent; caption the least
        pass
    with manager.use("video"):  # 10 + 5 + 12 > 20: caption goes first, then image is still too much
        pass
    assert models["caption"].unloads == 1 and models["image"].unloads == 1
    assert manager.loaded() == {"video": 12}
    with manager.use("caption"):  # 12 + 5 fits
        pass
    assert manager.loaded() == {"video": 12, "caption": 5}
    with manager.use("image"):  # a reload after an unload works
        assert models["image"].loaded and models["image"].loads == 2


def test_a_model_in_use_is_never_unloaded_under_its_caller():
    manager, models = _manager(15, image=10, video=12)
    with manager.use("image") as image:
        with manager.use("video"):
            assert image.loaded  # over budget while both are in use
        assert image.loaded
    with manager.use("video"):
        pass
    assert not models["image"].loaded  # once free, it is the one to go


def test_concurrent_first_uses_load_once():
    manager, models = _manager(None, image=10)
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        with manager.use("image"):
            pass

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert models["image"].loads == 1


def test_unknown_names_are_reported():
    manager, _ = _manager(None, image=1)
    with pytest.raises(KeyError, match="registered: image"):
        with manager.use("video"):
            pass
