"""Discovery: recursive folders, supported types, globs, hidden folders, skip, symlink loops, missing paths."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from ingest.discovery import DEFAULT_EXCLUDE, discover

FILES = [
    "a.md", "b.txt", "c.rst", "d.html", "e.pdf", "f.docx", "g.PY", "h.json", "notes",
    "sub/s.md", "sub/s.txt", "sub/image.gif",
    "sub/deep/x.txt", "sub/deep/y.markdown",
    ".hidden/secret.md", "sub/.cache/cached.md", ".dotfile.md",
    "node_modules/pkg/readme.md", "__pycache__/mod.txt",
    "index/store.md",
]


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "root"
    names = list(FILES)
    random.Random(3).shuffle(names)  # creation order must not leak into the result
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}\n", encoding="utf-8")
    return root


def rel(paths: list[Path], root: Path) -> list[str]:
    base = Path(os.path.abspath(root))
    return [p.relative_to(base).as_posix() for p in paths]


DEFAULT_RESULT = [
    "a.md", "b.txt", "c.rst", "d.html", "e.pdf", "f.docx",
    "index/store.md",
    "sub/s.md", "sub/s.txt",
    "sub/deep/x.txt", "sub/deep/y.markdown",
]


def test_folders_are_walked_recursively_taking_supported_types_only(tree):
    found = discover([tree])
    assert rel(found.files, tree) == DEFAULT_RESULT
    assert found.problems == []
    assert all(p.is_absolute() for p in found.files)


def test_order_is_stable_files_sorted_before_sorted_subfolders(tree):
    first = discover([tree]).files
    assert discover([tree]).files == first
    # Within each folder: its files by name, then its subfolders by name, recursively.
    by_folder: dict[Path, list[str]] = {}
    for path in first:
        by_folder.setdefault(path.parent, []).append(path.name)
    assert all(names == sorted(names) for names in by_folder.values())
    folders = list(dict.fromkeys(p.parent for p in first))
    assert folders == sorted(folders, key=lambda f: f.relative_to(Path(os.path.abspath(tree))).parts)


def test_an_explicitly_named_file_is_taken_whatever_its_extension(tree):
    found = discover([tree / "g.PY", tree / "notes", tree / "sub" / "image.gif"])
    assert rel(found.files, tree) == ["g.PY", "notes", "sub/image.gif"]
    # Even one a hidden folder or an exclude pattern would drop.
    assert rel(discover([tree / ".hidden" / "secret.md"], exclude=["*.md"]).files, tree) == [".hidden/secret.md"]


def test_a_file_named_twice_is_listed_once(tree):
    found = discover([tree / "a.md", tree, tree / "a.md"])
    assert rel(found.files, tree).count("a.md") == 1
    assert len(found.files) == len(DEFAULT_RESULT)


def test_include_bare_pattern_matches_names_at_any_depth(tree):
    assert rel(discover([tree], include=["*.md"]).files, tree) == ["a.md", "index/store.md", "sub/s.md"]


def test_include_pattern_with_a_slash_matches_the_relative_path(tree):
    files = rel(discover([tree], include=["sub/*.txt"]).files, tree)
    assert "sub/s.txt" in files
    assert "b.txt" not in files and "sub/s.md" not in files and "a.md" not in files


def test_include_never_widens_to_unsupported_types(tree):
    assert discover([tree], include=["*.png", "*.json"]).files == []


def test_exclude_bare_pattern(tree):
    files = rel(discover([tree], exclude=[*DEFAULT_EXCLUDE, "*.txt"]).files, tree)
    assert files == [f for f in DEFAULT_RESULT if not f.endswith(".txt")]


def test_exclude_pattern_with_a_slash(tree):
    files = rel(discover([tree], exclude=[*DEFAULT_EXCLUDE, "sub/*.txt"]).files, tree)
    assert "sub/s.txt" not in files
    assert "b.txt" in files and "sub/s.md" in files


def test_exclude_bare_pattern_drops_a_whole_folder(tree):
    files = rel(discover([tree], exclude=[*DEFAULT_EXCLUDE, "deep"]).files, tree)
    assert files == [f for f in DEFAULT_RESULT if not f.startswith("sub/deep/")]


def test_hidden_and_tool_folders_are_excluded_by_default(tree):
    files = rel(discover([tree]).files, tree)
    assert not any(part.startswith(".") for f in files for part in f.split("/"))
    assert not any(f.startswith(("node_modules/", "__pycache__/")) for f in files)
    everything = rel(discover([tree], exclude=()).files, tree)
    for name in (".hidden/secret.md", "sub/.cache/cached.md", ".dotfile.md", "node_modules/pkg/readme.md",
                 "__pycache__/mod.txt"):
        assert name in everything


def test_skip_folder_is_not_entered(tree, monkeypatch):
    found = discover([tree], skip=[tree / "index"])
    assert "index/store.md" not in rel(found.files, tree)
    assert rel(found.files, tree) == [f for f in DEFAULT_RESULT if f != "index/store.md"]
    # A relative skip path works too.
    monkeypatch.chdir(tree)
    assert "index/store.md" not in rel(discover([tree], skip=[Path("index")]).files, tree)


def test_symlink_loop_does_not_hang_and_is_reported(tree):
    (tree / "sub" / "deep" / "up").symlink_to("..", target_is_directory=True)  # deep/up -> sub
    (tree / "loop").symlink_to(".", target_is_directory=True)  # root/loop -> root
    found = discover([tree])
    assert rel(found.files, tree) == DEFAULT_RESULT  # nothing found twice
    reported = {Path(p).name: reason for p, reason in found.problems}
    assert set(reported) == {"up", "loop"}
    assert all("symlink" in reason for reason in reported.values())


def test_missing_path_is_reported_and_others_still_found(tree):
    missing = tree / "does-not-exist"
    found = discover([missing, tree / "a.md"])
    assert found.problems == [(missing, "no such file or folder")]
    assert rel(found.files, tree) == ["a.md"]


def test_broken_symlink_named_explicitly_is_taken_for_the_loader_to_report(tree):
    broken = tree / "dangling.md"
    broken.symlink_to(tree / "gone.md")
    found = discover([broken])
    assert found.problems == [] and rel(found.files, tree) == ["dangling.md"]
