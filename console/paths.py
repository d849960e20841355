"""Where files live: XDG config and data directories, and the playbooks and
themes shipped inside the package, in one place."""

from __future__ import annotations

import os
from importlib.resources import files
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


# The shipped data lives in the package (console/shipped/), so a wheel carries
# it. importlib.resources gives a Traversable; for a normal install (a wheel
# unpacked into site-packages, or an editable install) that is a real
# directory, so it is returned as a Path. A zipped install would need
# importlib.resources.as_file instead.
def shipped_playbooks() -> Path:
    """The folder of playbooks shipped with the console."""
    return Path(str(files("console") / "shipped" / "playbooks"))


def shipped_themes() -> Path:
    """The folder of themes shipped with the console."""
    return Path(str(files("console") / "shipped" / "themes"))
