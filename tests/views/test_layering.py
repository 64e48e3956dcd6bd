"""Rendering is separate from computing: the views import models (and shared helpers), never
the engine, the API client, the state backends or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import reconciler.views

FORBIDDEN = ("reconciler.engine", "reconciler.api", "reconciler.state", "reconciler.cli")


def test_views_import_models_only() -> None:
    folder = Path(reconciler.views.__file__).parent
    offending = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offending += [f"{path.name}: {n}" for n in names if n.startswith(FORBIDDEN)]
    assert not offending, offending
