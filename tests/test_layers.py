"""Layers: sources and the command line's fast paths never import Textual,
and heavy clients are imported only where a source needs them."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEADLESS = ["console.config", "console.sources", "console.sources.base", "console.sources.postgres",
            "console.sources.redis", "console.sources.http", "console.sources.errors",
            "console.sources.kubernetes", "console.thresholds", "console.readings", "console.text",
            "console.demo.servers", "console.demo.sandbox", "console.cli", "console.playbooks",
            "console.playbooks.importer", "console.playbooks.runner", "console.incident.journal",
            "console.incident.export", "console.incident.storage", "console.incident.state",
            "console.incident.updates", "console.transitions", "console.scribe", "console.playbook_desk"]


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
