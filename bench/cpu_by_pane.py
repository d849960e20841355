"""Where the steady-state CPU goes, pane by pane (issue 16): the console at a
1 s refresh against the same systems and load as bench/run.py, with no
source at all (Textual's own cost: the clock, the ages), with PostgreSQL
only (what pg_activity shows), and with all six panes; pg_activity beside
them in the same run.

    python bench/cpu_by_pane.py [seconds] [--each]   # --each: one source kind at a time
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1][0].isdigit() else 30
    root = Path(tempfile.mkdtemp(prefix="ic-cpu-"))
    systems = run.Systems(root)
    try:
        systems.load(seconds=3600)
        full = systems.write_config(root / "all.yaml")
        doc = yaml.safe_load(full.read_text())
        configs = {"no source": {"environment": doc["environment"], "refresh": 1.0},
                   "PostgreSQL only": {"environment": doc["environment"], "refresh": 1.0,
                                       "postgres": doc["postgres"]},
                   "all six panes": doc}
        if "--each" in sys.argv:
            base = {"environment": doc["environment"], "refresh": 1.0}
            health = [{k: v for k, v in svc.items() if k != "metrics"} for svc in doc["services"]]
            configs = {"Redis only": {**base, "redis": doc["redis"]},
                       "HTTP health only": {**base, "services": health},
                       "HTTP health + /metrics": {**base, "services": doc["services"]},
                       "Kubernetes only": {**base, "kubernetes": doc["kubernetes"]}}
        time.sleep(2)
        rows = []
        for name, body in configs.items():
            path = root / f"{name.replace(' ', '-').replace('/', '')}.yaml"
            path.write_text(yaml.safe_dump(body, sort_keys=False))
            path.chmod(0o600)
            got = run.steady(run.console_cmd(path, root / f"{path.stem}.json"), run.CONSOLE_DONE, seconds, {},
                             warmup=5)
            rows.append((f"console, {name}", got))
        pga = run.pg_activity_argv(systems)
        if pga:
            rows.append(("pg_activity", run.steady(pga, b"Help", seconds, {}, warmup=5)))
        for name, got in rows:
            print(f"{name:<28} CPU {got['cpu_pct']:5.2f} % of a core, {got['bytes_per_s']:6d} bytes/s, "
                  f"RSS {got['rss_mb']:.0f} MB")
    finally:
        systems.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
