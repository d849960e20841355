"""Pickers from live data (issue 12): a step's {pid}, {namespace},
{deployment}, {pod} or {database} is offered from what the panes show."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Input, OptionList

from console.incident.pickable import choices
from console.screens.prompt import Prompt
from console.vocabulary import Snapshot, State, utcnow

LATEST = {
    ("postgres", "primary"): Snapshot("postgres", "primary", State.OK, utcnow(), details={"sessions": [
        {"pid": 4242, "state": "idle in transaction", "xact_s": 75.0, "user": "alice", "application": "checkout",
         "database": "shop", "query": "UPDATE orders SET x = 1"},
        {"pid": 77, "state": "active", "query_s": 2.0, "user": "bob", "application": "checkout",
         "database": "shop", "query": "SELECT 1"},
        {"pid": 9, "state": "active", "query_s": 1.0, "user": "carol", "application": "\x1b[31m[red]x",
         "database": "ops", "query": "SELECT 2"},
    ]}),
    ("kubernetes", "app"): Snapshot("kubernetes", "app", State.WARNING, utcnow(), details={
        "workloads": [{"kind": "Deployment", "name": "api", "ready": 2, "desired": 3, "restarts": 7},
                      {"kind": "StatefulSet", "name": "db", "ready": 1, "desired": 1, "restarts": 0}],
        "pods": [{"name": "api-1", "phase": "Running", "ready": "0/1", "restarts": 2, "reason": "CrashLoopBackOff"},
                 {"name": "api-2", "phase": "Running", "ready": "0/1", "restarts": 9, "reason": "OOMKilled"}]}),
    ("redis", "down"): Snapshot("redis", "down", State.UNREACHABLE, utcnow()),
}


def test_pids_come_with_who_and_what_they_are_doing():
    offered = choices("pid", LATEST)
    assert [v for v, _ in offered] == ["4242", "77", "9"]
    assert "alice" in offered[0][1] and "checkout" in offered[0][1] and "75s" in offered[0][1]


def test_namespaces_workloads_and_pods_come_from_the_kubernetes_readings():
    assert [v for v, _ in choices("namespace", LATEST)] == ["app"]
    assert [v for v, _ in choices("deployment", LATEST)] == ["api"]
    assert [v for v, _ in choices("statefulset", LATEST)] == ["db"]
    assert [v for v, _ in choices("pod", LATEST)] == ["api-2", "api-1"]  # the most restarted first


def test_session_fields_are_counted_and_unknown_names_offer_nothing():
    assert choices("database", LATEST)[0] == ("shop", "primary · 2 sessions")
    assert choices("application_name", LATEST)[0][0] == "checkout"
    assert choices("replicas", LATEST) == []


class Asking(App):
    def __init__(self, prompt: Prompt) -> None:
        super().__init__()
        self.prompt, self.answer = prompt, "unset"

    def on_mount(self) -> None:
        self.push_screen(self.prompt, lambda answer: setattr(self, "answer", answer))


async def test_the_prompt_offers_choices_narrows_them_and_picks_one():
    app = Asking(Prompt("which pid?", choices=choices("pid", LATEST)))
    async with app.run_test(size=(100, 30)) as pilot:
        options = app.screen.query_one(OptionList)
        assert options.option_count == 3
        await pilot.press("7")
        assert options.option_count == 2  # 77, and 4242 (idle 75s): what a choice is counts too
        await pilot.press("backspace", *"bob")
        assert options.option_count == 1
        await pilot.press("down", "enter")
        await pilot.pause()
    assert app.answer == "77"


async def test_typing_a_value_that_is_not_offered_still_answers_and_hostile_choices_are_inert():
    app = Asking(Prompt("which application?", choices=choices("application", LATEST)))
    async with app.run_test(size=(100, 30)) as pilot:
        shown = [str(app.screen.query_one(OptionList).get_option_at_index(i).prompt)
                 for i in range(app.screen.query_one(OptionList).option_count)]
        assert not any("\x1b" in s for s in shown) and any("[red]x" in s for s in shown)
        await pilot.press(*"cron", "enter")
        await pilot.pause()
    assert app.answer == "cron"
