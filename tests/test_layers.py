"""Layers: sources and the command line's fast paths never import Textual,
and heavy clients are imported only where a source needs them."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEADLESS = ["console.config", "console.capabilities", "console.sources", "console.sources.base",
            "console.sources.postgres", "console.sources.redis", "console.sources.http", "console.sources.errors",
            "console.sources.kubernetes", "console.thresholds", "console.readings", "console.text",
            "console.demo.servers", "console.demo.sandbox", "console.cli", "console.playbooks",
            "console.playbooks.importer", "console.playbooks.runner", "console.playbooks.output",
            "console.incident.journal",
            "console.incident.export", "console.incident.storage", "console.incident.state",
            "console.incident.updates", "console.incident.session", "console.incident.crossings",
            "console.incident.desk", "console.incident.export_file", "console.vocabulary", "console.readonly",
            "console.secrets"]


def _imported_after(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_modules_do_not_import_textual(module):
    assert "textual" not in _imported_after(module)


def test_cli_imports_no_heavy_client_at_start():
    loaded = _imported_after("console.cli")
    assert not {"psycopg", "redis", "kubernetes", "httpx"} & loaded


def test_layer_contracts_hold():
    """The import-linter contracts in pyproject.toml: one-way layers, no
    Textual below the screen, no network client in a pane."""
    from pathlib import Path

    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]
    assert "3 kept, 0 broken" in out.stdout
