"""A package that installs anywhere (issue 11): the wheel carries the shipped
playbooks and themes. It is built from a copy of the source tree, installed
into a fresh virtual environment, and run from there: `check` lists the 15
shipped playbooks, `demo --help` answers, and the app starts with each
shipped theme.

The fresh environment gets the dependencies through a `.pth` file naming this
interpreter's site-packages (nothing is downloaded again); the commands run
outside the source tree, so the editable install of `console` cannot shadow
the wheel, and the test asserts it does not."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
THEMES = {"dark", "light", "war-room", "ansi"}
PLAYBOOKS = 15

# Starts the installed app headless with each shipped theme; prints what it saw.
START_WITH_EACH_THEME = textwrap.dedent("""
    import asyncio, json, sys
    import console
    from console import config, themes
    from console.app import IncidentConsole

    async def start(name):
        cfg = config.parse("refresh: 3600\\n", "packaged.yaml", env={})
        app = IncidentConsole(cfg, theme_name=name, sources=[])
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            return {"theme": app.theme, "problems": [str(p) for p in app.theme_problems],
                    "problem": app.theme_problem}

    found, problems = themes.discover(themes.SHIPPED)
    seen = {name: asyncio.run(start(name)) for name in sorted(found)}
    print(json.dumps({"console": console.__file__, "shipped": str(themes.SHIPPED),
                      "problems": [str(p) for p in problems], "seen": seen}))
""")


def _dependencies_site() -> Path:
    """The site-packages of this interpreter that holds the dependencies."""
    for entry in sys.path:
        if entry and (Path(entry) / "textual" / "__init__.py").is_file():
            return Path(entry)
    raise AssertionError("textual is not importable from sys.path")


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (argv, done.returncode, done.stdout, done.stderr)
    return done


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_has_the_shipped_playbooks_and_themes(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("INCIDENT_CONSOLE_CONFIG", None)

    # Build from a copy: an in-tree build would leave build/ behind, and stale
    # files in build/ end up in the wheel.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", "build", "dist", "*.egg-info", "__pycache__", ".git", ".hypothesis", ".*_cache", "bench",
        "tests"))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
         tmp_path, env, timeout=120)
    (wheel,) = wheels.glob("incident_console-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(wheel)], tmp_path, env, timeout=120)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     tmp_path, env).stdout.strip())
    assert site.is_relative_to(venv) and site != Path(sysconfig.get_path("purelib"))
    (site / "zz-outer-dependencies.pth").write_text(f"{_dependencies_site()}\n")

    where = _run([str(python), "-c", "import console; print(console.__file__)"], tmp_path, env).stdout.strip()
    assert Path(where).is_relative_to(site), f"the wheel is shadowed by {where}"

    console_bin = str(venv / "bin" / "incident-console")
    check = _run([console_bin, "check"], tmp_path, env)
    shipped = site / "console" / "shipped" / "playbooks"
    assert f"{PLAYBOOKS} playbooks: ok ({shipped})" in check.stdout, check.stdout
    assert sorted(p.stem for p in shipped.glob("*.yaml")) == sorted(p.stem for p in (
        ROOT / "console" / "shipped" / "playbooks").glob("*.yaml"))

    demo = _run([console_bin, "demo", "--help"], tmp_path, env)
    assert "usage" in demo.stdout.lower()

    started = json.loads(_run([str(python), "-c", START_WITH_EACH_THEME], tmp_path, env).stdout.splitlines()[-1])
    assert Path(started["console"]).is_relative_to(site)
    assert Path(started["shipped"]) == site / "console" / "shipped" / "themes"
    assert started["problems"] == []
    assert set(started["seen"]) == THEMES
    for name, seen in started["seen"].items():
        assert seen == {"theme": name, "problems": [], "problem": None}, name
