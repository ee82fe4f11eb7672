"""Every reference in the documentation and the docstrings resolves inside the repository, and the
product has one version.

A backticked dotted name of ours (`core.outages.is_outage`, or `faults.FaultSettings` beside the module
that names it) must import; a path (`docs/PERFORMANCE.md`, `tests/processors/worker.py`) must exist; a
Markdown file named anywhere must be one of ours.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from api.app import create_app
from core.settings import Settings
from core.version import VERSION

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    *("core", "db", "allegro_api", "simulator", "producers", "processors", "api", "cli", "bench", "tests"),
)
DOTTED = re.compile(r"`((?:[a-z_][a-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\(\))?`")
_ROOTS = "|".join((*PACKAGES, "docs", "scripts", "reference"))
PATH = re.compile(rf"\b((?:{_ROOTS})/[A-Za-z0-9_./-]+\.(?:py|md|json|yaml|yml|sh|txt|html))\b")
MARKDOWN = re.compile(r"\b([A-Za-z_]+\.md)\b")
SKIPPED_DIRS = {".venv", ".stack", "build", ".git", "node_modules", "__pycache__"}


def _sources() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*")
        if path.suffix in (".py", ".md")
        and not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
        and path.relative_to(ROOT).parts[0] != "reference"
    )


def _resolves(reference: str, beside: str | None) -> bool:
    parts = reference.split(".")
    candidates = [parts]
    if beside is not None:
        sibling = ROOT / beside / parts[0]
        if sibling.with_suffix(".py").exists() or (sibling / "__init__.py").exists():
            candidates.append([beside, *parts])
    for names in candidates:
        if names[0] not in PACKAGES:
            continue
        for cut in range(len(names), 0, -1):
            try:
                found: object = importlib.import_module(".".join(names[:cut]))
            except ImportError:
                continue
            try:
                for name in names[cut:]:
                    found = getattr(found, name)
            except AttributeError:
                break
            return True
    return not any(names[0] in PACKAGES for names in candidates)


def test_every_backticked_name_and_path_resolves() -> None:
    markdown_files = {path.name for path in ROOT.rglob("*.md") if not SKIPPED_DIRS & set(path.parts)}
    broken: list[str] = []
    for source in _sources():
        text = source.read_text(errors="replace")
        relative = source.relative_to(ROOT)
        beside = relative.parts[0] if source.suffix == ".py" and len(relative.parts) > 1 else None
        for match in DOTTED.finditer(text):
            if not _resolves(match.group(1), beside):
                broken.append(f"{relative}: `{match.group(1)}`")
        for match in PATH.finditer(text):
            if not (ROOT / match.group(1)).exists():
                broken.append(f"{relative}: {match.group(1)}")
        for match in MARKDOWN.finditer(text):
            if match.group(1) not in markdown_files:
                broken.append(f"{relative}: {match.group(1)}")
    assert broken == [], "\n".join(broken)


@pytest.mark.parametrize("module", ["core.outages", "simulator.config"])
def test_the_checker_sees_a_broken_reference(module: str) -> None:
    # The test above cannot pass by finding nothing: a made-up name beside a real module fails.
    imported: ModuleType = importlib.import_module(module)
    assert _resolves(f"{module}.{next(iter(vars(imported)))}", None)
    assert not _resolves(f"{module}.NoSuchName", None)
    assert not _resolves("faults.FaultConfig", "simulator")
    assert _resolves("faults.FaultSettings", "simulator")


def test_one_version_everywhere() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert VERSION == declared
    assert create_app(Settings(environment="development")).openapi()["info"]["version"] == declared
    assert f"/{declared} " in Settings(environment="development").allegro.user_agent
    found = set(re.findall(r"AllegroOrdersBackup/([0-9][0-9.]*)", (ROOT / ".env.example").read_text()))
    found |= set(re.findall(r"AllegroOrdersBackup/([0-9][0-9.]*)", (ROOT / "README.md").read_text()))
    assert found == {declared}
