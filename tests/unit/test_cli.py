"""The command line: flags to settings, one-shot actions, exit codes and error lines."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import naist_dask_tui
from naist_dask_tui import cli

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "naist_dask_tui", *args],
        capture_output=True, text=True, env=full_env, timeout=60, cwd=str(REPO),
    )


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"naist-dask-tui {naist_dask_tui.__version__}"


def test_usage_error_returns_2(capsys):
    assert cli.main(["--jobs"]) == 2
    assert "expected one argument" in capsys.readouterr().err


def test_settings_error_is_one_line_without_traceback(home, capsys):
    assert cli.main(["--memory", "250XB", "--check"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "naist-dask-tui: error: memory: '250XB' is not a size; use a number with a unit, "
        "e.g. 250GB or 120GiB (from --memory)\n"
    )


@pytest.mark.parametrize("text", ["5", "a:b", "1:2:3", ":"])
def test_bad_adapt(home, capsys, text):
    assert cli.main(["--adapt", text, "--show-settings"]) == 2
    assert "naist-dask-tui: error: adapt" in capsys.readouterr().err


def test_flags_become_overrides():
    args = cli.build_parser().parse_args(
        ["--jobs", "3", "--job-extra-directive", "-pe smp 4", "--job-extra-directive=-V",
         "--dashboard", "--adapt", "1:4", "--scheduler-interface", "eth0", "--skip-interface-check"]
    )
    assert cli.cli_overrides(args) == {
        "jobs": "3",
        "job_extra_directives": ["-pe smp 4", "-V"],
        "dashboard": True,
        "adapt_min": "1",
        "adapt_max": "4",
        "scheduler_interface": "eth0",
        "skip_interface_check": True,
    }
    args = cli.build_parser().parse_args(["--dashboard", ":9999", "--adapt", ":6"])
    assert cli.cli_overrides(args) == {
        "dashboard": True, "dashboard_address": ":9999", "adapt_min": None, "adapt_max": "6"
    }
    assert cli.cli_overrides(cli.build_parser().parse_args([])) == {}


def test_console_and_headless_dispatch(home, monkeypatch, capsys):
    """Routing only (the keeper and the screen are tested for real in test_keeper.py and the
    tmux tests): no cluster running -> a keeper is started with these settings and the screen
    attaches to it; --headless runs in the foreground; --attach ADDRESS watches in-process."""
    seen: list = []

    def fake(code, what):
        def run(settings, *rest, **kw):
            seen.append((what, settings, rest))
            return code
        return run

    launch = types.SimpleNamespace(name="local", backend="local")
    monkeypatch.setitem(sys.modules, "naist_dask_tui.console", types.SimpleNamespace(
        run_console=fake(3, "console"), run_attached=fake(0, "attached")))
    monkeypatch.setitem(sys.modules, "naist_dask_tui.core.headless",
                        types.SimpleNamespace(run_headless=fake(7, "headless")))
    monkeypatch.setitem(sys.modules, "naist_dask_tui.core.launch", types.SimpleNamespace(
        launch_keeper=lambda settings, **kw: (seen.append(("keeper", settings, ())), launch)[1]))
    monkeypatch.setattr(cli, "_offer_cleanup", lambda *a, **k: None)
    # what confirm_start asks is tested below; here only the dispatch
    monkeypatch.setattr(cli, "confirm_start", lambda settings, **kw: settings)
    assert cli.main(["--jobs", "3", "--backend", "local"]) == 0
    assert cli.main(["--headless", "--profile", "local"]) == 7
    assert cli.main(["--attach", "tcp://127.0.0.1:8786"]) == 3
    assert [w for w, _, _ in seen] == ["keeper", "attached", "headless", "console"]
    assert seen[0][1].jobs == 3 and seen[1][2][0].launch is launch
    assert seen[2][1].profile == "local"

    # --cleanup itself is tested for real in tests/sge/test_signals.py (a SIGKILLed console).


def test_show_settings(home, capsys):
    assert cli.main(["--show-settings", "--queue", "other.q"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^queue\s+other\.q\s+--queue$", out, re.M)


# -- in a subprocess, as a user runs it ------------------------------------------------------------


def _console_jobs() -> set[str] | None:
    """The job ids of this user's console jobs (names ndtui.*) in qstat; None without SGE.
    Only the console's own jobs: another user's submission at that moment is no failure."""
    if not shutil.which("qstat"):
        return None
    out = subprocess.run(["qstat", "-r"], capture_output=True, text=True, timeout=30).stdout
    ids, current = set(), None
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0].isdigit():
            current = fields[0]
        elif current and line.strip().startswith("Full jobname:") and fields[-1].startswith("ndtui."):
            ids.add(current)
    return ids


def test_print_job_script_for_naist_submits_nothing(home):
    before = _console_jobs()
    done = run_cli("--print-job-script")
    assert done.returncode == 0, done.stderr
    script = done.stdout
    assert script.startswith("#!/usr/bin/env bash")
    for line in ("#$ -q grid_short.q", "#$ -pe smp 24", "#$ -cwd", "#$ -j y"):
        assert line in script.splitlines()
    assert re.search(r"^#\$ -N ndtui\.[\w-]+\.\d+$", script, re.M)
    assert "--nthreads 24" in script and "--memory-limit 232.83GiB" in script
    assert "--interface ib0" in script and "--local-directory /var/tmp" in script
    assert f"#$ -o {home / 'state' / 'naist-dask-tui' / 'logs'}/" in script
    assert _console_jobs() == before  # nothing was submitted


def test_print_job_script_follows_flags(home):
    done = run_cli("--print-job-script", "--cores", "8", "--processes", "2", "--memory", "16GB",
                   "--job-extra-directive", "-pe smp 8", "--walltime", "01:00:00", "--project", "lab")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "#$ -pe smp 8" in lines and "#$ -pe smp 24" not in lines
    assert "#$ -l h_rt=01:00:00" in lines and "#$ -P lab" in lines
    assert "--nthreads 4" in done.stdout and "--nworkers 2" in done.stdout


def test_check_without_qsub_on_path(home):
    fake_bin = home / "bin"
    fake_bin.mkdir()
    done = run_cli("--check", env={"PATH": str(fake_bin)})
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(re.match(r"^(ok    |FAIL  |warn  )\S", line) for line in lines), lines
    assert lines[0].startswith("FAIL  qsub not found") and "--backend local" in lines[0]


def test_check_local_backend_passes_without_sge(home):
    fake_bin = home / "bin"
    fake_bin.mkdir()
    done = run_cli("--check", "--backend", "local", "--local-directory", str(home),
                   env={"PATH": str(fake_bin)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any(line.startswith("FAIL") for line in done.stdout.splitlines())
    assert "qsub" not in done.stdout


@pytest.mark.skipif(not shutil.which("qsub"), reason="qsub not installed: no SGE on this host")
def test_check_on_sge_host(home):
    done = run_cli("--check", "--skip-interface-check")
    assert done.returncode == 0, done.stdout
    assert re.search(r"^ok    qsub found: /\S+/qsub$", done.stdout, re.M)
    done = run_cli("--check", "--skip-interface-check", "--queue", "no_such.q")
    assert done.returncode == 1
    assert re.search(r"^FAIL  queue no_such\.q does not exist", done.stdout, re.M)


def test_local_backend_speaks_of_local_workers(home, capsys):
    import psutil

    assert cli.main(["--show-settings", "--backend", "local"]) == 0
    out = capsys.readouterr().out
    for sge_only in ("queue", "interface", "job_extra_directives", "walltime", "tls"):
        assert not re.search(rf"^{sge_only}\s", out, re.M), sge_only
    assert "not used by a local cluster: queue" in out
    assert not re.search(r"^cores\s+24\b", out, re.M) and not re.search(r"^memory\s+250GB", out, re.M)
    m = re.search(r"^max_jobs \(in force\)\s+(\d+) workers", out, re.M)
    mem = re.search(r"^memory\s+(\S+)", out, re.M)
    from dask.utils import parse_bytes

    assert m and int(m[1]) * parse_bytes(mem[1]) <= psutil.virtual_memory().total
    assert cli.main(["--check", "--backend", "local", "--local-directory", str(home)]) == 0
    out = capsys.readouterr().out
    assert "per local worker" in out and "per job" not in out
