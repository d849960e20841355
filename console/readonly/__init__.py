"""What a probe may ask: reads only.

One set of rules serves ``incident-console check`` (refuse a playbook whose
probe would write) and the probe runner (refuse it again at run time). Each
``*_is_read_only`` function returns ``None`` when the probe is fine, else the
reason in words an operator can act on.

- SQL (:mod:`.sql`): decided on PostgreSQL's own parse tree, with an
  allow-list of node kinds and of functions; at run time names are pinned
  to ``pg_catalog`` and the catalog is asked what syntax cannot see
  (:mod:`.sql_catalog`), all inside a read-only transaction.
- Redis (:mod:`.redis`): an allow-list of read commands that reveal no secret.
- HTTP (:mod:`.http`) and Kubernetes (:mod:`.kubernetes`): GETs and lists.
"""

from console.readonly.http import http_is_read_only, http_request
from console.readonly.kubernetes import KUBERNETES_READS, kubernetes_is_read_only, kubernetes_read
from console.readonly.redis import REDIS_READ_SUBCOMMANDS, REDIS_READS, redis_argv, redis_is_read_only
from console.readonly.sql import SqlProbe, judge_sql, sql_is_read_only

__all__ = ["KUBERNETES_READS", "REDIS_READS", "REDIS_READ_SUBCOMMANDS", "SqlProbe", "http_is_read_only",
           "http_request", "judge_sql", "kubernetes_is_read_only", "kubernetes_read", "redis_argv",
           "redis_is_read_only", "sql_is_read_only"]
