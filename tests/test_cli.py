"""The whole ``toolkit`` command line, walked from ``toolkit.cli.build_parser()``: every option has help; every
verb declares its exit codes once (its ``--help`` epilog, the README's table and what its code can return all
come from that table); the README lists every verb; every verb that talks to a service takes the same
connection flags (``--environment sandbox`` for every service); ``--concurrency``/``--no-progress`` are one
shared option each; messages are worded for a terminal; ``./run toolkit`` finds the sandbox of ``./run sandbox``."""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import pytest

from toolkit.cli import build_parser, main
from toolkit.core.cli import bulk_options, codes_text
from toolkit.core.registry import spec

from .conftest import read_line, stop_process_group

ROOT = Path(__file__).resolve().parents[1]
#: verbs that talk to no service: the sandbox itself, and preparing photos on this computer
LOCAL = {("sandbox",), ("uddata", "prepare")}
NOTEBOOK_WORDS = re.compile(r"\b(kernels?|notebooks?|cells?)\b|sb\.stop|toolkit\.sandbox\.start", re.I)


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every parser of the tree with its path, inner ones (``toolkit uddata``) and verbs alike."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, (*path, name))


def verbs() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    return {path: p for path, p in walk(build_parser())
            if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)}


def test_every_option_of_every_verb_has_help() -> None:
    missing = []
    for path, parser in walk(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"toolkit {' '.join(path)} {c.dest}" for c in action._choices_actions if not c.help]
            elif action.help == argparse.SUPPRESS:
                assert action.option_strings == ["--sandbox"], (path, action.option_strings)  # the hidden alias
            elif not action.help:
                missing.append(f"toolkit {' '.join(path)}: {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without help: {missing}"
    assert {("sandbox",), ("dokus", "products", "apply"), ("uddata", "upload")} <= set(verbs())


def test_every_verb_shows_its_table_of_exit_codes_in_its_help() -> None:
    for path, parser in verbs().items():
        table = parser.get_default("exit_codes")
        assert table and callable(parser.get_default("func")), path
        assert {0, 2, 3, 130} <= set(table), (path, table)  # success, usage (argparse), an error, Ctrl-C
        text = parser.format_help()
        epilog = text[text.index("exit codes:"):].split("\n")[1:]
        shown = {int(line.split()[0]): " ".join(line.split()[1:]) for line in epilog if line[:6].strip()}
        assert set(shown) == set(table), (path, shown)
        flat = " ".join(" ".join(epilog).split())
        for code, meaning in table.items():
            assert " ".join(meaning.split()) in flat, (path, code, meaning)


def readme_verbs() -> dict[tuple[str, ...], str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Command line\n"):]
    section = section[:section.index("\n## ", 5)]
    found: dict[tuple[str, ...], str] = {}
    for command, codes in re.findall(r"^\| `toolkit ([^`]*)` \| .*? \| (.*) \|$", section, re.M):
        words = []
        for word in command.split():
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            words.append(word)
        assert tuple(words) not in found, f"the README lists toolkit {' '.join(words)} twice"
        found[tuple(words)] = codes.strip()
    for code, meaning in ((2, "when the command line is wrong"), (3, "when an error stopped the run"),
                          (130, "on Ctrl-C")):
        assert f"{code} {meaning}" in " ".join(section.split()), f"the README does not say exit code {code}"
    return found


def test_the_readme_lists_every_verb_with_the_exit_codes_of_the_code() -> None:
    documented, declared = readme_verbs(), verbs()
    assert set(documented) == set(declared), (
        f"in the argparse tree, not in the README: {sorted(set(declared) - set(documented))}; "
        f"in the README, not in the tree: {sorted(set(documented) - set(declared))}")
    for path, parser in declared.items():
        assert documented[path] == codes_text(parser.get_default("exit_codes"), common=False), path


# -- what the code returns --------------------------------------------------------------------------------
def _functions_of(func: Callable[..., Any]) -> list[Callable[..., Any]]:
    """The function(s) a verb runs: itself, or what its lambda calls (``lambda args: _cmd_check(...)``)."""
    if func.__name__ != "<lambda>":
        return [func]
    return [func.__globals__[n] for n in func.__code__.co_names if inspect.isfunction(func.__globals__.get(n))]


def _imported(func: Callable[..., Any], tree: ast.AST, name: str) -> Any:
    """``name`` as ``func`` sees it: a global of its module or a ``from … import name`` inside it."""
    if name in func.__globals__:
        return func.__globals__[name]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            module = importlib.import_module("." * node.level + (node.module or ""), func.__module__.rsplit(".", 1)[0]
                                             if node.level else None)
            return getattr(module, name)
    raise AssertionError(f"{func.__qualname__}: cannot find {name}")


def returned_codes(func: Callable[..., Any]) -> set[int]:
    """Every exit code ``func`` can return, read from its source: whole numbers, module constants
    (``NOT_CONFIRMED``, ``EXIT_CODES["failed"]``), ``a if … else b`` and calls of functions read the same way.
    Anything else fails: a verb's code must be one the test can see."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    body = tree.body[0]

    def values(node: ast.AST | None) -> set[int]:
        if node is None:
            return {0}
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return {node.value}
        if isinstance(node, ast.IfExp):
            return values(node.body) | values(node.orelse)
        if isinstance(node, ast.Name) and isinstance(func.__globals__.get(node.id), int):
            return {func.__globals__[node.id]}
        if isinstance(node, ast.Name):  # a local variable: every value assigned to it
            assigned = [n.value for n in ast.walk(body) if isinstance(n, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == node.id for t in n.targets)]
            if assigned:
                return set().union(*(values(v) for v in assigned))
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and isinstance(node.slice, ast.Constant):
            return {func.__globals__[node.value.id][node.slice.value]}
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return returned_codes(_imported(func, tree, node.func.id))
        raise AssertionError(f"{func.__qualname__}: cannot tell which exit code `{ast.unparse(node)}` is")

    found: set[int] = set()
    stack = list(body.body)  # type: ignore[attr-defined]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue  # an inner function's returns are not the verb's
        if isinstance(node, ast.Return):
            found |= values(node.value)
        stack.extend(ast.iter_child_nodes(node))
    return found


def test_each_verb_returns_only_the_codes_of_its_table() -> None:
    for path, parser in verbs().items():
        table = parser.get_default("exit_codes")
        codes = set().union(*(returned_codes(f) for f in _functions_of(parser.get_default("func"))))
        assert 0 in codes and codes <= set(table), (path, sorted(codes), sorted(table))


def test_main_gives_2_for_usage_3_for_an_error_and_refuses_an_undeclared_code(monkeypatch: pytest.MonkeyPatch,
                                                                              capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["uddata", "audit"])  # the file is missing
    assert usage.value.code == 2 and "usage:" in capsys.readouterr().err
    monkeypatch.setattr("toolkit.mediaflow.cli._cmd_latest", lambda args: 7)
    assert main(["mediaflow", "latest"]) == 3
    assert "exit code 7 is not one of this command's" in capsys.readouterr().err

    def interrupted(args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("toolkit.mediaflow.cli._cmd_latest", interrupted)
    assert main(["mediaflow", "latest"]) == 130


# -- connection flags, --concurrency, --no-progress ---------------------------------------------------------
def test_every_verb_that_talks_to_a_service_takes_the_same_connection_flags() -> None:
    for path, parser in verbs().items():
        flags = {s for a in parser._actions for s in a.option_strings}
        if path in LOCAL:
            assert "--environment" not in flags, path
            continue
        fields = spec(path[0]).fields
        assert {"--environment"} | {f.flag for f in fields if not f.secret} <= flags, path
        assert not {f.flag for f in fields if f.secret} & flags, f"{path}: a secret as a flag"
        environment = next(a for a in parser._actions if "--environment" in a.option_strings)
        assert "sandbox" in environment.help and environment.dest == "environment", path


def test_environment_of_a_service_without_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    """Livingdocs and Dokus have no environment field, yet take --environment as the others do: a URL, a
    name of TOOLKIT_<SERVICE>_ENVIRONMENTS, Livingdocs' production (its default address); --base-url wins."""
    from toolkit.core import cli

    _no_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("TOOLKIT_LIVINGDOCS_TOKEN", "demo-token-not-a-secret")
    monkeypatch.setenv("TOOLKIT_LIVINGDOCS_ENVIRONMENTS", '{"staging": "http://127.0.0.1:9/staging/"}')
    verb = ["livingdocs", "import", "i.csv", "--system-name", "s"]
    for given, expected in ((["--environment", "production"], "https://server.livingdocs.io"),
                            (["--environment", "http://127.0.0.1:9/x/"], "http://127.0.0.1:9/x"),
                            (["--environment", "staging"], "http://127.0.0.1:9/staging"),
                            (["--environment", "staging", "--base-url", "http://127.0.0.1:8/y"], "http://127.0.0.1:8/y")):
        client = cli.connect("livingdocs", build_parser().parse_args([*verb, *given]))
        try:
            assert client.base_url == expected, given
        finally:
            client.close()
    assert main(["dokus", "check", "--environment", "production"]) == 3  # Dokus has no default address
    err = capsys.readouterr().err
    assert "unknown environment 'production'" in err and "sandbox" in err and "--base-url" in err


def test_concurrency_is_a_whole_number_or_auto_and_given_only_when_given(capsys: pytest.CaptureFixture) -> None:
    parser = build_parser()
    with_concurrency = [p for p in verbs().values() if any("--concurrency" in a.option_strings for a in p._actions)]
    assert len(with_concurrency) >= 6  # uddata upload/audit, boknett pull, mediaflow upload, livingdocs, dokus
    for verb in with_concurrency:
        action = next(a for a in verb._actions if "--concurrency" in a.option_strings)
        assert action.default is None and "auto" in action.help and re.search(r"default (\d+|auto)$", action.help)
        assert any("--no-progress" in a.option_strings for a in verb._actions), verb.prog
    from toolkit.uddata import Client

    own = inspect.signature(Client.audit).parameters["concurrency"].default  # the call's default, said as it is
    assert next(a.help for a in verbs()[("uddata", "audit")]._actions if a.dest == "concurrency").endswith(
        f"default {own}")
    given = parser.parse_args(["uddata", "audit", "c.csv", "--concurrency", "auto", "--no-progress"])
    assert bulk_options(given) == {"concurrency": "auto", "progress": False}
    given = parser.parse_args(["boknett", "pull", "--state", "s", "--concurrency", "3"])
    assert bulk_options(given) == {"concurrency": 3, "progress": True}
    assert bulk_options(parser.parse_args(["mediaflow", "upload", "f", "--folder-id", "1"])) == {"progress": True}
    for bad in ("0", "many", "2.5"):
        with pytest.raises(SystemExit) as refused:
            parser.parse_args(["uddata", "audit", "c.csv", "--concurrency", bad])
        assert refused.value.code == 2 and "whole number of at least 1 or auto" in capsys.readouterr().err


# -- words for a terminal -------------------------------------------------------------------------------------
def _no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("TOOLKIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.chdir(tmp_path)  # no .env file
    monkeypatch.setattr("sys.stdin", None)  # no terminal to ask in


@pytest.mark.parametrize("service", ["uddata", "dokus", "livingdocs", "boknett", "mediaflow"])
def test_no_sandbox_is_said_in_a_terminals_words(service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    _no_credentials(monkeypatch, tmp_path)
    monkeypatch.setattr("toolkit.core.discovery.discover", lambda service=None: None)
    assert main([service, "check", "--environment", "sandbox"]) == 3
    err = capsys.readouterr().err
    assert "no sandbox is running" in err and "./run sandbox" in err and "another terminal" in err
    assert not NOTEBOOK_WORDS.search(err), err


def test_a_stopped_sandbox_is_said_in_a_terminals_words(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    from toolkit.testing import free_port

    _no_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("TOOLKIT_DOKUS_PASSWORD", "demo-password-not-a-secret")
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: as a sandbox that was stopped
    assert main(["dokus", "products", "export", "p.xlsx", "--base-url", url, "--email", "a@example.no"]) == 3
    err = capsys.readouterr().err
    assert "./run sandbox" in err and not NOTEBOOK_WORDS.search(err), err


def test_the_command_lines_own_messages_do_not_talk_about_notebooks() -> None:
    files = [ROOT / "toolkit" / "cli.py", *sorted((ROOT / "toolkit").glob("*/cli.py"))]
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert not NOTEBOOK_WORDS.search(node.value), f"{path.name}: {node.value!r}"


# -- ./run toolkit ----------------------------------------------------------------------------------------------
def test_run_help_names_the_toolkit_command() -> None:
    result = subprocess.run([str(ROOT / "run"), "help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("toolkit "))
    assert "command line" in line


@pytest.mark.integration
def test_run_toolkit_finds_the_sandbox_of_run_sandbox_from_another_folder(tmp_path: Path) -> None:
    """``./run sandbox`` in one terminal, ``./run toolkit … --environment sandbox`` in another, started in a
    folder of the analyst's: the file names are read there, and the sandbox is found. A venv of links to
    this one stands in for .venv, so the run script installs nothing."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "toolkit"):
        (venv / "bin" / name).symlink_to(Path(sys.executable).parent / name)
    (venv / ".installed").touch()
    os.utime(venv / ".installed", (4102444800, 4102444800))  # newer than pyproject.toml, whatever happens to it
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLKIT_")}
    env.update(TOOLKIT_VENV=str(venv), PYTHON=sys.executable, PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    work = tmp_path / "work"
    work.mkdir()
    sandbox = subprocess.Popen([str(ROOT / "run"), "sandbox", "--json", "--services", "uddata"], env=env, cwd=work,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        info = json.loads(read_line(sandbox, what="the sandbox's JSON line"))
        assert (venv / "sandbox.json").exists()  # the file ./run lab uses too
        creds = info["credentials"]["uddata"]
        import toolkit

        with toolkit.uddata.connect(**creds) as ud:
            roster = ud.students()["cpr"].tolist()[:3]
        pd.DataFrame({"cpr": roster}).to_csv(work / "cprs.csv", index=False)
        done = subprocess.run([str(ROOT / "run"), "toolkit", "uddata", "audit", "cprs.csv", "--environment",
                               "sandbox", "--out", "audit.csv", "--no-progress"], env=env, cwd=work,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr[-2000:]
        assert pd.read_csv(work / "audit.csv", dtype=str)["cpr"].tolist() == roster
        assert not (ROOT / "audit.csv").exists()
    finally:
        stop_process_group(sandbox)
        sandbox.stdout.close()  # type: ignore[union-attr]
        sandbox.stderr.close()  # type: ignore[union-attr]
