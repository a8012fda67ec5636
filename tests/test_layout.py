"""Rules of the code's shape that a change could quietly break: one folder per capability,
modules small enough to read at once, renderers that only format."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "alumnos_cli"
CAPABILITIES = ("seed", "stack", "bench", "report", "proof")
SHARED = {"__init__.py", "main.py", "settings.py", "errors.py", "files.py", "runfolder.py",
          "database.py"}
MAX_LINES = 400
RENDERERS = sorted((PACKAGE / "report" / "render").glob("*.py"))
# What reading a file looks like in Python; a renderer is handed everything it shows.
FILE_READING = {"open", "read_text", "read_bytes", "Path", "glob", "iterdir", "exists"}


def test_the_tree_shows_the_product() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == {*CAPABILITIES, "commands"}
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert modules == SHARED, "a module beside the capabilities belongs in one of them"


@pytest.mark.parametrize("module", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p))
def test_no_module_needs_a_table_of_contents(module: Path) -> None:
    lines = len(module.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module.relative_to(ROOT)} has {lines} lines"


@pytest.mark.parametrize("renderer", RENDERERS, ids=lambda p: p.name)
def test_renderers_read_no_file(renderer: Path) -> None:
    tree = ast.parse(renderer.read_text())
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    imported = {alias.name for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom) for alias in node.names}
    found = (names | attributes | imported) & FILE_READING
    assert not found, f"{renderer.name} reads files: {sorted(found)}"
    assert "pathlib" not in {getattr(node, "module", None) for node in ast.walk(tree)}
