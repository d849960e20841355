"""Where files live: XDG config and data directories, in one place."""

from __future__ import annotations

import os
from pathlib import Path

APP = "incident-console"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP


def default_config() -> Path:
    env = os.environ.get("INCIDENT_CONSOLE_CONFIG")
    return Path(env) if env else config_dir() / "config.yaml"


def default_incident() -> Path:
    """The current incident's journal, shared by the console and `note`."""
    return data_dir() / "incidents" / "current.json"
