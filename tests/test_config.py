"""Config: typed values, ${ENV} expansion, and every problem as path:line: message."""

from __future__ import annotations


import pytest

from console import config, located
from console.cli import main
from console.located import Invalid

GOOD = """\
environment: {name: production, banner: red, read_only: true}
refresh: 2
postgres:
  - name: primary
    dsn: postgresql://monitor:${PGPASSWORD}@db.internal:5432/app
redis:
  - name: cache
    url: redis://cache.internal:6379/0
services:
  - name: api
    url: https://api.internal/health
    timeout: 2
    metrics: https://api.internal/metrics
prometheus:
  url: http://prometheus.internal:9090
kubernetes:
  context: prod
  namespaces: [app]
thresholds:
  postgres.connections_ratio: {warning: 0.6}
playbooks: [./playbooks]
theme: war-room
"""


def test_the_design_example_loads_into_typed_objects():
    cfg = config.parse(GOOD, "c.yaml", env={"PGPASSWORD": "s3cret"})
    assert cfg.environment.name == "production" and cfg.environment.read_only is True
    assert cfg.postgres[0].dsn == "postgresql://monitor:s3cret@db.internal:5432/app"
    assert cfg.services[0].timeout == 2.0 and cfg.services[0].expect_status == (200,)
    assert cfg.kubernetes.namespaces == ("app",)
    limit = cfg.thresholds["postgres.connections_ratio"]
    assert (limit.warning, limit.critical) == (0.6, 0.9)  # critical kept from the default


def test_default_postgres_warning_is_seventy_percent():
    cfg = config.parse("{}", "c.yaml", env={})
    assert cfg.thresholds["postgres.connections_ratio"].warning == 0.70


def _problems(text: str, env=None) -> list[str]:
    with pytest.raises(Invalid) as err:
        config.parse(text, "bad.yaml", env=env or {})
    return [str(p) for p in err.value.problems]


def test_every_problem_names_file_and_line():
    problems = _problems("refresh: fast\npostgres:\n  - name: primary\n    dns: x\n"
                         "services:\n  - name: api\n    url: ftp://x\n")
    assert "bad.yaml:1: 'refresh' must be a number, not str" in problems
    assert "bad.yaml:4: unknown key 'dns' (did you mean 'dsn'?)" in problems
    assert any(p.startswith("bad.yaml:3: missing required key 'postgres[0].dsn'") for p in problems)
    assert any(p.startswith("bad.yaml:7: 'services[0].url' must be a http or https URL") for p in problems)


def test_missing_environment_variable_is_located():
    assert _problems("redis:\n  - name: c\n    url: redis://:${REDIS_PASSWORD}@h/0\n") == [
        "bad.yaml:3: environment variable REDIS_PASSWORD is not set (used in 'redis[0].url')"]


def test_env_default_is_used():
    cfg = config.parse("redis:\n  - name: c\n    url: redis://${RHOST:-localhost}:6379/0\n", "c.yaml", env={})
    assert cfg.redis[0].url == "redis://localhost:6379/0"


def test_threshold_typos_and_inversions_are_caught():
    problems = _problems("thresholds:\n  postgres.conections_ratio: {warning: 0.5}\n"
                         "  redis.clients_ratio: {warning: 0.9, critical: 0.5}\n")
    assert problems[0] == ("bad.yaml:2: unknown metric 'postgres.conections_ratio' "
                           "(did you mean 'postgres.connections_ratio'?)")
    assert problems[1] == "bad.yaml:3: threshold 'redis.clients_ratio': warning 0.9 is past critical 0.5"


def test_duplicate_source_names_and_keys():
    problems = _problems("redis:\n  - name: c\n    url: redis://a\n  - name: c\n    url: redis://b\n")
    assert problems == ["bad.yaml:4: duplicate name 'c' (first on line 2)"]
    assert _problems("refresh: 1\nrefresh: 2\n") == ["bad.yaml:2: duplicate key 'refresh'"]


@pytest.mark.parametrize("raw, expected", [
    (b"refresh: [1\n", "bad.yaml:2: invalid YAML"),
    (b"refresh: 2\nenvironment: \xff\xfe\n", "bad.yaml:2: not valid UTF-8"),
    (b"- just\n- a list\n", "bad.yaml:1: the config must be a mapping"),
    (b"refresh: 0\n", "bad.yaml:1: 'refresh' must be between"),
])
def test_broken_files(tmp_path, raw, expected):
    path = tmp_path / "bad.yaml"
    path.write_bytes(raw)
    with pytest.raises(Invalid) as err:
        config.load(path)
    assert str(err.value).replace(str(tmp_path) + "/", "").startswith(expected)


def test_alias_bomb_is_refused_quickly():
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    with pytest.raises(Invalid, match="alias bomb"):
        located.parse(bomb, "bomb.yaml")


def test_redact_masks_passwords():
    assert config.redact("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert config.redact("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert config.redact("host=h password=pw dbname=x") == "host=h password=*** dbname=x"
    assert config.redact("http://h/health") == "http://h/health"


def test_world_readable_config_with_credentials_warns(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("postgres:\n  - name: p\n    dsn: postgresql://u:pw@h/db\n")
    path.chmod(0o644)
    assert "readable by other users" in config.load(path).warnings[0]
    path.chmod(0o600)
    assert config.load(path).warnings == ()


def test_check_command_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("refresh: 1\nredis:\n  - name: c\n    url: redis://127.0.0.1:1/0\n")
    assert main(["check", "--config", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("refresh: 1\nredis:\n  - name: c\n    uri: redis://x\n")
    assert main(["check", "--config", str(bad)]) == 2
    out = capsys.readouterr().out
    assert f"{bad}:4: unknown key 'uri' (did you mean 'url'?)" in out


def test_missing_default_config_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("INCIDENT_CONSOLE_CONFIG", raising=False)
    assert main(["status"]) == 2
    assert "no config file here" in capsys.readouterr().err
