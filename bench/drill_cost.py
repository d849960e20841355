"""What drilling in costs the monitored systems (issue 12), measured on real servers.

Starts its own PostgreSQL (pg_stat_statements preloaded) and Redis, opens
40 idle sessions and a lock chain, then counts, on the servers themselves:

- statements per PostgreSQL refresh and Redis commands per refresh, with
  every detail closed (pg_stat_statements, INFO commandstats);
- what opening each detail costs: a session, a group, the lock tree's root,
  Redis's slowlog / clients / memory / keyspace / replication.

    .venv/bin/python bench/drill_cost.py [--refreshes 20]

Prints JSON; writes it to bench/results/drill_cost.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.config import PostgresTarget, RedisTarget  # noqa: E402
from console.demo.servers import PostgresServer, RedisServer  # noqa: E402
from console.drill import RowRef  # noqa: E402
from console.sources.postgres import PostgresSource  # noqa: E402
from console.sources.redis import RedisSource  # noqa: E402

ROLE = "console_bench"


def pg_calls(admin) -> int:
    return int(admin.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
                             "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = %s", (ROLE,)).fetchone()[0])


def redis_calls(client) -> int:
    return sum(v["calls"] for v in client.info("commandstats").values())


async def measure(refreshes: int) -> dict:
    pg, rds = PostgresServer(max_connections=100).start(), RedisServer().start()
    held: list = []
    try:
        admin = psycopg.connect(pg.dsn(), autocommit=True)
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        admin.execute(f"CREATE ROLE {ROLE} LOGIN SUPERUSER")
        admin.execute("CREATE TABLE orders (id int primary key)")
        admin.execute("INSERT INTO orders VALUES (1)")
        for i in range(40):
            held.append(psycopg.connect(pg.dsn(application_name=f"app-{i % 4}"), autocommit=True))
        holder = psycopg.connect(pg.dsn(application_name="migration"))
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        held.append(holder)
        waiter = psycopg.connect(pg.dsn(application_name="checkout-api"), autocommit=True)
        held.append(waiter)
        waiter.pgconn.send_query(b"SELECT count(*) FROM orders")
        source = PostgresSource(PostgresTarget("bench", pg.dsn(user=ROLE, application_name="incident-console")))
        cache = RedisSource(RedisTarget("cache", rds.url, 2.0))
        client = redis.Redis.from_url(rds.url)
        out: dict = {}

        await source.poll()
        await cache.poll()
        before_pg, before_redis = pg_calls(admin), redis_calls(client)
        for _ in range(refreshes):
            snap = await source.poll()
            await cache.poll()
        out["pg_statements_per_refresh_details_closed"] = round((pg_calls(admin) - before_pg) / refreshes, 2)
        redis_now = redis_calls(client)
        # The bench's own INFO commandstats call counts once per measurement.
        out["redis_commands_per_refresh_details_closed"] = round((redis_now - before_redis - 1) / refreshes, 2)

        group = next(g["row"] for g in snap.details["groups"] if g["application"] == "app-0")
        blocker = next(s["pid"] for s in snap.details["sessions"] if s.get("application") == "migration")
        for label, row in (("session", f"session/{blocker}"), ("group", group)):
            start = pg_calls(admin)
            await source.drill(row)
            out[f"pg_statements_open_{label}"] = pg_calls(admin) - start
        for view in ("slowlog", "clients", "memory", "keyspace", "replication"):
            start = redis_calls(client)
            await cache.drill(view)
            out[f"redis_commands_open_{view}"] = redis_calls(client) - start - 1
        await source.close()
        await cache.close()
        admin.close()
        return out
    finally:
        for conn in held:
            conn.close()
        rds.cleanup()
        pg.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=20)
    args = parser.parse_args()
    result = asyncio.run(measure(args.refreshes))
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "drill_cost.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
