"""Finding the files to ingest: folders walked recursively, include/exclude globs, symlink loops caught."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from ingest.loaders import LOADERS

DEFAULT_EXCLUDE = (".*", "__pycache__", "node_modules")


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def _matches(relative: str, patterns: Sequence[str]) -> bool:
    """A pattern with a slash matches the path relative to the root; one without, any single part."""
    name_parts = relative.split("/")
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch(relative, pattern) or fnmatch(relative, pattern.replace("**/", "")):
                return True
        elif any(fnmatch(part, pattern) for part in name_parts):
            return True
    return False


def discover(
    paths: Sequence[Path],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    skip: Sequence[Path] = (),
) -> Discovery:
    """Files under `paths` with a supported extension, filtered by globs, in a stable order.

    A path named explicitly is taken whatever its extension (the loader then
    reports an unsupported type); inside folders only supported types are taken.
    `skip` holds folders never to enter (the index itself).
    """
    found = Discovery()
    seen: set[Path] = set()
    skip_real = {os.path.realpath(s) for s in skip}

    def add(path: Path) -> None:
        absolute = Path(os.path.abspath(path))
        if absolute not in seen:
            seen.add(absolute)
            found.files.append(absolute)

    for root in paths:
        root = Path(root)
        if not root.exists() and not root.is_symlink():
            found.problems.append((root, "no such file or folder"))
            continue
        if not root.is_dir():
            add(root)
            continue
        visited: set[tuple[int, int]] = set()
        for folder, dirs, files in os.walk(root, followlinks=True):
            stat = os.stat(folder)
            if (stat.st_dev, stat.st_ino) in visited or os.path.realpath(folder) in skip_real:
                if (stat.st_dev, stat.st_ino) in visited:
                    found.problems.append((Path(folder), "folder already visited through another link (symlink loop?); skipped"))
                dirs[:] = []
                continue
            visited.add((stat.st_dev, stat.st_ino))
            relative_folder = os.path.relpath(folder, root)
            prefix = "" if relative_folder == "." else relative_folder.replace(os.sep, "/") + "/"
            dirs[:] = sorted(d for d in dirs if not _matches(prefix + d, exclude))
            for name in sorted(files):
                relative = prefix + name
                if Path(name).suffix.lower() not in LOADERS or _matches(relative, exclude):
                    continue
                if include and not _matches(relative, include):
                    continue
                add(Path(folder) / name)
    return found
