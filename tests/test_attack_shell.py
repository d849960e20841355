"""Values that become code (issue 10, class 2): an attacker's value typed for a
placeholder, in every place a playbook author might put one.

Each attack runs the real command through the real runner, in a temporary
directory, with the typed confirmation, and then looks for the file the value
tried to create. A value is either refused before anything runs (the refusal
names the character and why) or it runs as data. ``ssh`` and ``kubectl exec``
are stubs on PATH that do what the real ones do with their words: hand them
to a shell.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess

import pytest
from rich.text import Text

from console import paths
from console.config import parse
from console.playbooks import load_playbooks, shell
from console.playbooks.model import Playbook, Step
from console.playbooks.runner import Refused, StepRunner

BOOK = Playbook("attack", "attack", "sev1", (), (), (), "playbooks/attack.yaml", 1)
PLAYBOOKS = paths.shipped_playbooks()

# The contexts of the issue, and the ones an attacker tries next.
CONTEXTS = {
    "default expansion": 'echo "${VAR:-{x}}"',
    "[[ -gt ]]": "[[ {x} -gt 0 ]] && echo big || echo small",
    "$(( ))": "echo $(( {x} ))",
    "$(( )) in double quotes": 'echo "$(( {x} + (1 << 2) ))"',
    "(( ))": "(( {x} )); echo done",
    "let": "let n={x}; echo $n",
    "declare -i": "declare -i n={x}; echo $n",
    "array subscript": "a[{x}]=1; echo ${#a[@]}",
    "printf -v": "printf -v {x} %s 1; echo done",
    "indirection ${!x}": 'n={x}; echo "${!n}"',
    "bash -c double-quoted": 'bash -c "echo {x}"',
    "bash -c single-quoted": "bash -c 'echo {x}'",
    "bash -c arithmetic": "bash -c 'echo $(( {x} ))'",
    "bash -c positional arithmetic": "bash -c 'echo $(( $1 ))' _ {x}",
    "eval": 'eval "echo {x}"',
    "source <(...)": 'source <(echo "echo {x}")',
    "here-document": "cat <<EOF\n{x}\nEOF",
    "here-document into bash": "bash <<EOF\necho {x}\nEOF",
    "here-string": "cat <<< {x}",
    "ssh": "ssh db1 echo {x}",
    "ssh quoted": "ssh db1 'echo {x}'",
    "find -exec sh -c": "find . -maxdepth 0 -exec sh -c 'echo {x}' \\;",
    "awk program": 'awk "BEGIN { print \\"{x}\\" }"',
    "awk expression": "awk 'BEGIN { print {x} }'",
    "xargs sh -c": "echo {x} | xargs -I% sh -c 'echo %'",
    "kubectl exec -- sh -c": 'kubectl exec api-1 -- sh -c "echo {x}"',
    "env then bash -c": "env V={x} bash -c 'echo $V'",
    "case": "case {x} in *) echo matched;; esac",
    "ANSI-C $'...'": "echo $'{x}'",
    "backticks": "echo `echo {x}`",
    "$( ) in double quotes": 'echo "$(echo {x})"',
    "single quotes": "echo '{x}'",
    "argv, no shell": "printf %s {x}",
    "argv, option position": "ls {x}",
}

ATTACKS = {
    "$(touch PWNED)": "'\\$'",
    "`touch PWNED`": "'`'",
    "a[$(touch PWNED)]": "'\\['",
    "x[$(touch PWNED)]": "'\\['",
    "x;touch PWNED": "';'",
    "x&&touch PWNED": "'&'",
    "x|touch PWNED": "'\\|'",
    "x>PWNED": "'>'",
    "x\ntouch PWNED": "line break",
    "x\rtouch PWNED": "line break",
    "x\x00;touch PWNED": "line break or NUL",
    "'\"": "\"'\"",
    "';touch PWNED;'": "\"'\"",
    "\";touch PWNED;\"": "'\"'",
    "{touch,PWNED}": "'{'",
    "x touch PWNED": "a space",
    "*": "'\\*'",
    "~root": "'~'",
    "PWNED=1": "'='",
    "i++": "'\\+\\+'",
    "--help": "starts with '-'|'--'",
    "\u202etouch PWNED": "U\\+202E",
    "é": "U\\+00E9",
    "a" * 10_000: "characters long",
    "": "is empty",
}
# Inside the allowed characters: these must run, and only as data.
AS_DATA = ["PWNED", "touch", "n", "1,0", "10.0.0.7:5432", "api-7f9c/x@y%z+w", "-rf"]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """A working directory to look for PWNED in, and stubs for ssh and kubectl exec."""
    work = tmp_path / "work"
    work.mkdir()
    stubs = tmp_path / "bin"
    stubs.mkdir()
    # ssh joins its words after the host into one line for the remote shell.
    (stubs / "ssh").write_text('#!/bin/sh\nshift\nexec sh -c "$*"\n')
    # kubectl exec POD -- CMD...: runs CMD as an argv in the container.
    (stubs / "kubectl").write_text('#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n')
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    monkeypatch.chdir(work)
    return work, {"PATH": f"{stubs}:{os.environ['PATH']}", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}


def command(template: str) -> Step:
    return Step("attack-step", "attack", "command", command=template, runnable=True)


async def attempt(template: str, value: str, environment: dict[str, str], journal=None) -> tuple[str, str]:
    """("refused", why) or ("ran", output): the typed confirmation is always the expected one."""
    runner = StepRunner(parse("refresh: 2\n"), {}, journal, environment=environment, command_timeout=10)
    step = command(template)
    try:
        expected = runner.expected_confirmation(step, {"x": value})
    except Refused as refused:
        with pytest.raises(Refused):  # and running it is refused too, confirmation or not
            await runner.run(BOOK, step, {"x": value}, value)
        return "refused", str(refused)
    result = await runner.run(BOOK, step, {"x": value}, expected)
    return "ran", result.output if result.ok else f"{result.error}: {result.output}"


def test_the_harness_sees_an_attack_that_works(in_tmp):
    """Spliced into the text by hand, the value runs: PWNED is what these tests would see."""
    work, environment = in_tmp
    subprocess.run(["bash", "-c", "echo $(( a[$(touch PWNED)] ))"], env=environment, capture_output=True)
    assert (work / "PWNED").exists()


@pytest.mark.parametrize("value", list(ATTACKS), ids=lambda v: repr(v[:24]))
@pytest.mark.parametrize("context", list(CONTEXTS))
async def test_an_attack_value_is_refused_in_every_context(in_tmp, context, value):
    work, environment = in_tmp
    outcome, said = await attempt(CONTEXTS[context], value, environment)
    assert not (work / "PWNED").exists()
    assert list(work.iterdir()) == []
    assert outcome == "refused", said
    assert re.search(ATTACKS[value], said), said


@pytest.mark.parametrize("value", AS_DATA)
@pytest.mark.parametrize("context", list(CONTEXTS))
async def test_an_allowed_value_runs_only_as_data(in_tmp, context, value):
    work, environment = in_tmp
    outcome, said = await attempt(CONTEXTS[context], value, environment)
    assert list(work.iterdir()) == [], said
    if outcome == "refused":  # only for being where a command name goes, or as an option
        assert "command name" in said or "starts with '-'" in said, said


@pytest.mark.parametrize("template, value, output", [
    ('echo "${VAR:-{x}}"', "api-1", "api-1"),
    ("bash -c 'echo {x}'", "api-1", "api-1"),
    ("ssh db1 echo {x}", "api-1", "api-1"),
    ('kubectl exec api-1 -- sh -c "echo {x}"', "x:y", "x:y"),
    ("cat <<EOF\n{x}\nEOF", "10.0.0.7", "10.0.0.7"),
    ("cat <<< {x}", "10.0.0.7", "10.0.0.7"),
    ("cat <<-EOF\n\t{x}\n\tEOF\necho {x}", "a", "a\na"),
    ("case {x} in api-*) echo matched;; esac", "api-1", "matched"),
    ("echo $(( {x} + (1 << 2) ))", "1", "5"),
    ("bash -c 'echo $(( {x} ))'", "n", "0"),
    ("echo \"${VAR:-{x}}\"", "10.0.0.7", "10.0.0.7"),
    ("n=7; echo $(( {x} ))", "n", "7"),  # arithmetic may read a variable, never write or run
    ("echo $'{x}\\x21'", "hi", "hi!"),
    ("find . -maxdepth 0 -exec sh -c 'echo {x}' \\;", "api-1", "api-1"),
])
async def test_values_arrive_whole_where_a_nested_shell_reads_them(in_tmp, template, value, output):
    work, environment = in_tmp
    assert await attempt(template, value, environment) == ("ran", output)
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("template", [
    "{x} --version", "bash -c {x}", "bash -c '{x}'", 'sh -c "{x}"', "eval {x}", 'eval "{x}"', "sudo {x}",
    "xargs {x}", "ls; {x}", "true && {x}", "echo $( {x} )", "echo `{x}`", "ssh db1 {x}", "env {x}",
    "timeout 5 {x}", "if {x}; then echo; fi", "( {x} )", "exec {x}", "watch {x}", "nohup {x}",
    "echo $(( 1 << 2 ))\n{x}",  # a shift in arithmetic is not a here-document hiding the next line
])
async def test_a_value_never_chooses_the_program(in_tmp, template):
    work, environment = in_tmp
    outcome, said = await attempt(template, "touch", environment)
    assert outcome == "refused" and "where a command name goes" in said
    assert list(work.iterdir()) == []


async def test_a_quoted_here_document_refuses_a_placeholder_it_would_not_expand(in_tmp):
    outcome, said = await attempt("cat <<'EOF'\n{x}\nEOF", "api", in_tmp[1])
    assert outcome == "refused" and "delimiter is quoted" in said


async def test_an_inherited_icv_variable_never_stands_in_for_a_value(in_tmp):
    work, environment = in_tmp
    environment = {**environment, "ICV_x": "$(touch PWNED)", "ICV_stale": "stale"}
    outcome, said = await attempt('printf %s "${ICV_stale:-none}" {x}', "api", environment)
    assert (outcome, said) == ("ran", "noneapi")
    assert list(work.iterdir()) == []


# ---- what runs, what is shown, what is copied, what is journaled -------------------

def test_a_template_without_shell_syntax_runs_with_no_shell():
    built = shell.build('git log --since="2 hours ago" -n {x}', {"x": "5"})
    assert built.argv == ("git", "log", "--since=2 hours ago", "-n", "5") and built.script is None
    assert built.exec_argv() == ["git", "log", "--since=2 hours ago", "-n", "5"]
    assert built.shown()[:2] == ["runs with no shell, as these words:", "  [0] git"]
    assert built.shown()[-2:] == ["values:", "  {x} = 5"]


@pytest.mark.parametrize("template", ["echo {x} | wc -c", "FOO=1 env {x}", "cd /tmp && ls {x}", "ls ~/{x}",
                                      "echo $HOME {x}", "echo * {x}", "let n={x}"])
def test_shell_syntax_means_bash_with_values_in_the_environment(template):
    built = shell.build(template, {"x": "api"})
    assert built.argv is None and "${ICV_x}" in built.script and "api" not in built.script
    assert built.environment == {"ICV_x": "api"}
    assert built.exec_argv("/bin/bash") == ["/bin/bash", "-c", built.script]


def test_the_confirmation_lists_the_script_and_each_value():
    built = shell.build("kubectl delete pod {pod} -n {ns} | tee /dev/null", {"pod": "api-1", "ns": "prod"})
    assert built.shown() == [
        "runs in bash; values are passed as environment variables, never as shell text:",
        '  kubectl delete pod "${ICV_pod}" -n "${ICV_ns}" | tee /dev/null',
        "values:", "  ICV_pod = api-1", "  ICV_ns = prod"]


@pytest.mark.parametrize("template", ["printf %s {x}", "printf '%s' \"{x}\" | cat", "cat <<EOF\n{x}\nEOF",
                                      "printf %s $'\\x41'{x}", "bash -c 'printf %s {x}'"])
def test_what_is_copied_does_what_runs(in_tmp, template):
    """The clipboard gets the template with the values in: pasted into bash, it prints the same."""
    work, environment = in_tmp
    built = shell.build(template, {"x": "api-1:5432"})
    ran = subprocess.run(built.exec_argv(), env={**environment, **built.environment}, capture_output=True)
    pasted = subprocess.run(["bash", "-c", built.pasteable], env=environment, capture_output=True)
    assert ran.stdout == pasted.stdout and b"api-1:5432" in ran.stdout


async def test_the_journal_records_the_argv_or_script_and_the_values(in_tmp):
    journal = []
    record = lambda kind, **data: journal.append((kind, data))  # noqa: E731
    await attempt("printf %s {x}", "api", in_tmp[1], record)
    await attempt("printf %s {x} | cat", "api", in_tmp[1], record)
    await attempt("printf %s {x}", "$(touch PWNED)", in_tmp[1], record)
    (_, argv_run), (_, script_run), (_, refused) = journal
    assert argv_run["argv"] == ["printf", "%s", "api"] and argv_run["values"] == {"x": "api"}
    assert script_run["script"] == 'printf %s "${ICV_x}" | cat' and script_run["values"] == {"x": "api"}
    assert argv_run["command"] == "printf %s api" and script_run["command"] == "printf %s api | cat"
    assert refused["ok"] is False and "'$'" in refused["refused"]


def test_every_shipped_command_still_builds():
    books, problems = load_playbooks([PLAYBOOKS])
    runner = StepRunner(parse("refresh: 2\n"), {}, None)
    built = 0
    for book in books:
        for step in book.steps:
            if step.command and (step.kind == "command" or step.action == "shell"):
                values = {name: "api" for name in runner.values_needed(step)}
                assert runner.render_command(step, values), (book.id, step.id)
                built += 1
    assert built > 30


async def test_the_confirmation_screen_shows_values_as_inert_data():
    from textual.app import App
    from textual.widgets import Static

    from console.screens.confirm import ConfirmTyped

    lines = ["runs in bash; values are passed as environment variables, never as shell text:",
             '  echo "${ICV_x}" [bold]not markup[/bold]', "values:", "  ICV_x = a\x1b]52;c;cHduZWQ=\x07b"]

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(ConfirmTyped("Restart", lines, "api"))

    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        shown = app.screen.query_one("#what", Static).content
        assert isinstance(shown, Text) and not shown.spans
        plain = shown.plain
        assert '"${ICV_x}" [bold]not markup[/bold]' in plain and "ICV_x = a" in plain
        assert "\x1b" not in plain and "\x07" not in plain
        assert plain.count("\n") == 3  # one line each, nothing cut


def test_values_are_checked_character_by_character():
    for good in ["api-7f9c", "10.0.0.7:5432", "deploy/api", "a.b_c@d%e+f,g", "0"]:
        shell.check_value("x", good)
    for bad, named in [("a b", "a space"), ("a\tb", "a tab"), ("a[0]", "'['"), ("é", "U+00E9"),
                       ("a=b", "'='"), ("a#b", "'#'"), ("a!b", "'!'"), ("a^b", "'^'")]:
        with pytest.raises(shell.ValueRefused, match=named.replace("[", r"\[").replace("+", r"\+")
                           .replace("^", r"\^")):
            shell.check_value("x", bad)


def test_a_run_that_times_out_takes_its_whole_process_group(in_tmp):
    work, environment = in_tmp
    script = "sleep 37.123 & echo started; wait"  # a duration no other test sleeps
    done = asyncio.run(shell.run_bounded(["bash", "-c", script], environment, 0.5, 1024))
    assert done.timed_out and done.output == "started\n"
    left = subprocess.run(["pgrep", "-fx", "sleep 37.123"], capture_output=True)
    assert left.stdout == b""
