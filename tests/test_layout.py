"""The arrows between the packages run one way: rag/ → ingest/ → (index/, generators/) → common/.

Every import of every module is read (also the ones inside functions): a lower package never imports a higher
one, index/ and generators/ never import each other, and common/ imports nothing of the project.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rag", "ingest", "index", "generators", "common")
MAY_IMPORT = {
    "rag": {"rag", "ingest", "index", "generators", "common"},
    "ingest": {"ingest", "index", "generators", "common"},
    "index": {"index", "common"},
    "generators": {"generators", "common"},
    "common": {"common"},
}


def imported_names(path: Path) -> set[tuple[str, int]]:
    """(dotted name, line) for every import in the module; `from a.b import c` gives a.b and a.b.c."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module, node.lineno))
            found.update((f"{node.module}.{alias.name}", node.lineno) for alias in node.names)
    return found


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level package of ours, line) for every import in the module."""
    return {(name.split(".")[0], line) for name, line in imported_names(path) if name.split(".")[0] in PACKAGES}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_runs_against_the_arrows(package):
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {target}"
             for path in sorted((ROOT / package).rglob("*.py"))
             for target, line in sorted(imported_packages(path)) if target not in MAY_IMPORT[package]]
    assert not wrong, "\n".join(wrong)


# Inside generators/: the roles do not lean on each other; training builds on the text models; the shared
# modules beside them (model table, resolution, memory budget) import no role.
GENERATOR_ROLES = {"text": {"text"}, "media": {"media"}, "training": {"training", "text"}, "": set()}


def generator_role_imports(path: Path) -> set[tuple[str, int]]:
    """(role sub-package of generators/, line) for every import of one."""
    return {(name.split(".")[1], line) for name, line in imported_names(path)
            if name.startswith("generators.") and name.split(".")[1] in GENERATOR_ROLES}


def test_generator_roles_import_only_what_their_role_allows():
    wrong = []
    for path in sorted((ROOT / "generators").rglob("*.py")):
        parts = path.relative_to(ROOT / "generators").parts
        role = parts[0] if len(parts) > 1 and parts[0] in GENERATOR_ROLES else ""
        wrong += [f"{path.relative_to(ROOT)}:{line} imports generators.{target}"
                  for target, line in sorted(generator_role_imports(path)) if target not in GENERATOR_ROLES[role]]
    assert not wrong, "\n".join(wrong)
