"""The command line: --config and --incident before or after the sub-command,
--demo and the environment file reaching a running demo, and the README
naming the demo's journal as the code does."""

from __future__ import annotations

import os
import stat
import re
import subprocess
import sys
from pathlib import Path

import pytest

from console import cli
from console.demo import running
from console.incident.journal import Journal

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A config with no sources and no playbooks (fast to check), a journal
    path, and private XDG folders."""
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    for name in ("INCIDENT_CONSOLE_CONFIG", "INCIDENT_CONSOLE_INCIDENT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "playbooks").mkdir()
    config = tmp_path / "console.yaml"
    config.write_text(f"refresh: 2\nplaybooks: [{tmp_path / 'playbooks'}]\n", encoding="utf-8")
    return {"config": config, "journal": tmp_path / "incident.json", "runtime": runtime, "tmp": tmp_path}


def notes(journal: Path) -> list[str]:
    j = Journal(journal)
    try:
        return [e.data["text"] for e in j.events() if e.kind == "note"]
    finally:
        j.close()


# ---- --config and --incident, before or after the sub-command -------------------------
def test_note_takes_config_after_the_sub_command_as_a_real_process(home):
    done = subprocess.run([sys.executable, "-m", "console", "note", "deploy", "rolled", "back",
                           "--config", str(home["config"]), "--incident", str(home["journal"])],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert notes(home["journal"]) == ["deploy rolled back"]


@pytest.mark.parametrize("argv", [
    ["--config", "{config}", "--incident", "{journal}", "note", "hello"],
    ["note", "hello", "--config", "{config}", "--incident", "{journal}"],
    ["--incident", "{journal}", "note", "--config", "{config}", "hello"],
    ["--config", "{config}", "note", "hello", "--incident", "{journal}"],
])
def test_note_in_every_order(home, argv):
    argv = [a.format(**home) for a in argv]
    assert cli.main(argv) == 0
    assert notes(home["journal"]) == ["hello"]


@pytest.mark.parametrize("argv", [
    ["check", "--config", "{config}"],
    ["--config", "{config}", "check"],
    ["check", "--config", "{config}", "--incident", "{journal}"],
    ["--incident", "{journal}", "check", "--config", "{config}"],
    ["--config", "{tmp}/missing.yaml", "check", "--config", "{config}"],  # the one after wins
])
def test_check_in_every_order(home, argv, capsys):
    assert cli.main([a.format(**home) for a in argv]) == 0
    assert f"{home['config']}: ok (0 sources)" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["check", "status"])
def test_a_config_after_the_sub_command_is_the_one_used(home, command, capsys):
    missing = home["tmp"] / "missing.yaml"
    assert cli.main([command, "--config", str(missing), "--incident", str(home["journal"])]) == 2
    captured = capsys.readouterr()
    assert str(missing) in captured.out + captured.err


def test_export_takes_the_incident_after_the_sub_command(home, capsys):
    assert cli.main(["note", "--incident", str(home["journal"]), "found it"]) == 0
    assert cli.main(["export", "--format", "json", "--incident", str(home["journal"]),
                     "--config", str(home["config"])]) == 0
    assert "found it" in capsys.readouterr().out


def test_the_design_contract_for_the_console_still_parses():
    args = cli._parser().parse_args(["--config", "c.yaml", "--incident", "j.json", "--read-only",
                                     "--theme", "war-room"])
    assert (args.command, args.config, args.incident, args.read_only, args.theme) == (
        None, "c.yaml", "j.json", True, "war-room")
    args = cli._parser().parse_args(["--incident", "j.json", "demo", "--theme", "light", "--read-only"])
    assert (args.command, args.incident, args.theme, args.read_only) == ("demo", "j.json", "light", True)
    args = cli._parser().parse_args(["status", "--json"])
    assert (args.command, args.json, getattr(args, "config", None)) == ("status", True, None)


def test_unknown_options_are_still_refused(home, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["note", "hello", "--configg", str(home["config"])])
    assert exit_.value.code == 2


# ---- reaching the running demo ---------------------------------------------------------
def announce(home, pid: int | None = None) -> Path:
    home["journal"].touch()
    return running.announce(running.RunningDemo(pid or os.getpid(), home["config"], home["journal"]))


def test_note_and_check_reach_the_running_demo_with_demo(home, capsys):
    announce(home)
    assert cli.main(["note", "--demo", "restarted", "checkout-api"]) == 0
    assert notes(home["journal"]) == ["restarted checkout-api"]
    assert cli.main(["check", "--demo"]) == 0
    assert f"{home['config']}: ok" in capsys.readouterr().out


def test_an_explicit_incident_wins_over_demo(home, tmp_path):
    announce(home)
    other = tmp_path / "other.json"
    assert cli.main(["note", "--demo", "--incident", str(other), "elsewhere"]) == 0
    assert notes(other) == ["elsewhere"]
    assert notes(home["journal"]) == []


def test_the_environment_file_sets_config_and_incident_for_a_shell(home, tmp_path):
    odd = tmp_path / "it's $HOME `x`"
    odd.mkdir()
    config = odd / "config.yaml"
    config.write_text(home["config"].read_text(), encoding="utf-8")
    journal = odd / "demo.json"
    env_file = running.announce(running.RunningDemo(os.getpid(), config, journal))
    assert env_file.parent == home["runtime"] / "incident-console"
    assert env_file.stat().st_mode & 0o077 == 0
    script = ('source "$1" && "$2" -m console note sourced && '
              'printf "%s\\n" "$INCIDENT_CONSOLE_CONFIG" "$INCIDENT_CONSOLE_INCIDENT"')
    done = subprocess.run(["bash", "-c", script, "bash", str(env_file), sys.executable],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [str(config), str(journal)]
    assert notes(journal) == ["sourced"]


def pointer(env_file: Path, pid: int | None = None) -> Path:
    return env_file.parent / running.POINTER.format(pid=pid or os.getpid())


def test_the_files_go_when_the_demo_ends_and_demo_says_so(home, capsys):
    env_file = announce(home)
    running.withdraw(os.getpid())
    assert not env_file.exists() and not pointer(env_file).exists()
    assert cli.main(["note", "--demo", "too late"]) == 2
    assert "no demo is running" in capsys.readouterr().err
    assert notes(home["journal"]) == []


@pytest.fixture()
def other_demo():
    """A second live process, standing for a second demo."""
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid
    process.kill()
    process.wait()


def test_with_two_demos_the_newest_is_reached_and_outlived(home, tmp_path, other_demo):
    announce(home)
    later = tmp_path / "later.json"
    env_file = running.announce(running.RunningDemo(other_demo, home["config"], later))
    assert running.find().incident == later
    assert str(later) in env_file.read_text()
    running.withdraw(other_demo)  # the later demo ends: the earlier one is reached again
    assert running.find().incident == home["journal"]
    assert str(home["journal"]) in env_file.read_text()
    assert pointer(env_file).exists() and not pointer(env_file, other_demo).exists()


def test_a_demo_that_died_is_not_reached(home, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    announce(home, pid=dead.pid)
    assert cli.main(["note", "--demo", "x"]) == 2
    assert "has ended" in capsys.readouterr().err


def test_a_pointer_others_can_write_is_not_believed(home, capsys):
    env_file = announce(home)
    pointer(env_file).chmod(0o666)
    assert cli.main(["status", "--demo"]) == 2
    assert "only you can write" in capsys.readouterr().err


def test_a_runtime_folder_open_to_others_is_not_used(home, capsys):
    announce(home)
    (home["runtime"] / "incident-console").chmod(0o777)
    assert cli.main(["check", "--demo"]) == 2
    assert "not a private folder" in capsys.readouterr().err
    with pytest.raises(running.NoRunningDemo):
        announce(home)


def test_a_pointer_that_is_a_link_is_not_followed(home, tmp_path, capsys):
    env_file = announce(home)
    elsewhere = tmp_path / "elsewhere.json"
    pointer(env_file).rename(elsewhere)
    pointer(env_file).symlink_to(elsewhere)
    assert cli.main(["note", "--demo", "x"]) == 2
    assert "not used" in capsys.readouterr().err


def test_a_fifo_for_a_pointer_does_not_hang(home, capsys):
    env_file = announce(home)
    pointer(env_file).unlink()
    os.mkfifo(pointer(env_file), 0o600)
    assert cli.main(["note", "--demo", "x"]) == 2
    assert "not used" in capsys.readouterr().err


def test_a_config_that_is_a_link_is_not_followed(home, tmp_path, capsys):
    link = tmp_path / "link.yaml"
    link.symlink_to(home["config"])
    running.announce(running.RunningDemo(os.getpid(), link, home["journal"]))
    assert cli.main(["check", "--demo"]) == 2
    assert "not yours (or is a link)" in capsys.readouterr().err


def test_a_config_in_a_folder_others_can_rename_in_is_not_used(home, tmp_path, capsys):
    """Found by a red team: the config's folder was 0777 without the sticky
    bit, so another user could swap the file between the check and the load."""
    shared = tmp_path / "shared"
    shared.mkdir()
    config = shared / "console.yaml"
    config.write_text(home["config"].read_text(), encoding="utf-8")
    shared.chmod(0o777)
    running.announce(running.RunningDemo(os.getpid(), config, home["journal"]))
    assert cli.main(["check", "--demo"]) == 2
    assert "others may rename files in it" in capsys.readouterr().err
    shared.chmod(0o777 | stat.S_ISVTX)  # sticky, as /tmp: only the owner renames
    assert cli.main(["check", "--demo"]) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away takes root")
def test_a_journal_someone_else_owns_is_not_written(home, capsys):
    announce(home)
    os.chown(home["journal"], 65534, 65534)
    assert cli.main(["note", "--demo", "x"]) == 2
    assert "not yours" in capsys.readouterr().err


def test_the_fallback_runtime_folder_is_named_for_the_user(monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert running.runtime_dir().name == f"incident-console-{os.getuid()}"


# ---- the demo's journal, as the README names it -----------------------------------------
def test_the_readme_names_the_demo_journal_as_the_code_does(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    path = running.demo_journal(0)
    assert path.parent == tmp_path / "incident-console" / "incidents"
    assert re.fullmatch(r"demo-\d{8}-\d{6}\.json", path.name)
    # The README writes the time as its placeholders; every demo journal it
    # names must be that one name.
    placeholder = running.JOURNAL_NAME
    for code, shown in (("%Y", "YYYY"), ("%m", "MM"), ("%d", "DD"), ("%H", "HH"), ("%M", "MM"), ("%S", "SS")):
        placeholder = placeholder.replace(code, shown)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(demo[^`\s]*\.json)`", readme))
    assert named == {placeholder}, named
