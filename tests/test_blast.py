"""Blast radius (issue 12): a PostgreSQL session is linked to the service it
belongs to, and that service's health and error rate are shown beside it."""

from __future__ import annotations

import pytest

from console import config
from console.drill import Detail, Section
from console.incident.blast import blast_radius, services_of, with_blast_radius
from console.located import Invalid
from console.readings import percent
from console.vocabulary import Snapshot, State, utcnow

CONFIG = """\
services:
  - name: checkout-api
    url: http://127.0.0.1:9/health
    client_networks: [10.0.1.0/24, "fd00::/8"]
  - name: payments-api
    url: http://127.0.0.1:9/health
    application_names: [payments, payments-worker]
"""


def cfg():
    return config.parse(CONFIG, "c.yaml", env={})


LATEST = {
    ("http", "checkout-api"): Snapshot("http", "checkout-api", State.CRITICAL, utcnow()),
    ("errors", "checkout-api"): Snapshot("errors", "checkout-api", State.CRITICAL, utcnow(),
                                         metrics={"error_ratio": 0.125, "request_rate": 40.0}),
}


@pytest.mark.parametrize("application,client,services", [
    ("checkout-api", None, ["checkout-api"]),           # by default a service's sessions carry its name
    ("psql", "10.0.1.77:5544", ["checkout-api"]),       # or come from its network
    ("psql", "[fd00::5]:5544", ["checkout-api"]),
    ("psql", "fd00::5", ["checkout-api"]),           # a group names the address alone
    ("psql", "10.0.1.9", ["checkout-api"]),
    ("payments-worker", "local", ["payments-api"]),     # named: its own name no longer counts
    ("payments-api", "10.9.9.9:1", []),
    ("", "local", []),
    ("x", "not an address", []),
])
def test_sessions_are_claimed_by_application_name_or_client_network(application, client, services):
    assert services_of(cfg(), application, client) == services


def test_the_detail_of_a_session_shows_its_service_health_and_error_rate():
    detail = Detail("session 4242", (Section("query", text="SELECT 1"),),
                    extra={"application": "checkout-api", "client": "local"})
    shown = with_blast_radius(detail, cfg(), LATEST)
    radius = shown.sections[0]
    assert radius.rows == (("checkout-api", "critical", percent(0.125), "40/s"),)
    assert shown.sections[1:] == detail.sections


def test_a_group_lists_each_service_once_and_unknown_services_say_how_to_claim_them():
    group = Detail("group", extra={"sessions": [{"application": "checkout-api"}, {"client": "10.0.1.5:1"},
                                                {"application": "payments"}]})
    names = [row[0] for row in with_blast_radius(group, cfg(), LATEST).sections[0].rows]
    assert names == ["checkout-api", "payments-api"]
    nobody = with_blast_radius(Detail("s", extra={"application": "cron", "client": "local"}), cfg(), LATEST)
    assert "application_names" in nobody.sections[0].text
    assert blast_radius(cfg(), {}, "payments", None)[0].health == "–"


def test_a_detail_that_names_no_session_is_left_alone():
    detail = Detail("slowlog")
    assert with_blast_radius(detail, cfg(), LATEST) is detail


@pytest.mark.parametrize("bad", ["[nope]", "[10.0.0.0/33]", "['']", "10.0.0.0/8"])
def test_client_networks_are_checked_with_file_and_line(bad):
    text = CONFIG.replace("[10.0.1.0/24, \"fd00::/8\"]", bad)
    with pytest.raises(Invalid) as err:
        config.parse(text, "c.yaml", env={})
    assert "c.yaml:4" in str(err.value) or "c.yaml:5" in str(err.value)
