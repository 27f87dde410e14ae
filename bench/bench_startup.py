"""Start-up: `naist-dask-tui --backend local` to its first painted screen, attaching a screen to
a running cluster, and import costs.

* First screen: the console is launched in a pseudo-terminal (TERM=xterm-256color, 120x40)
  exactly as a user would (the ``naist-dask-tui`` entry point); the clock stops when the
  terminal output, escape sequences removed, shows the main screen (tab bar and footer).
  "First data" is when the status bar first says "connected" (the first poll landed).
  Each launch ends with SIGTERM (the screen detaches) and ``naist-dask-tui stop --all`` (its
  keeper deletes the cluster), both waited for.
* Attach: a cluster kept by a ``--headless`` keeper; ``naist-dask-tui attach NAME`` to its first
  painted screen and to its first data, then SIGTERM (a detach).
* Imports: ``python -X importtime`` of ``naist_dask_tui.app`` and of everything the console
  path imports before its first paint; the biggest top-level imports are listed.
* Heavy imports deferred: one more launch records ``sys.modules`` at the moment of the first
  paint (SIGUSR1 from this script) and tells whether dask.array, bokeh, numpy... were loaded.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from bench.common import PY, Report, child_env, fmt, log, median, part_main, strip_ansi

PART = "startup"
GOAL_S = 1.5
ATTACH_GOAL_S = 1.0
COLS, ROWS = 120, 40
# The main screen is painted: its tab bar or its status bar (first paint) ...
PAINT_MARKERS = ("1 Overview", "waiting for the first poll", "connecting", "connected")
# ... and the status bar after the first poll.
DATA_MARKER = "connected"
DATA_WAIT = 15.0  # s after the first paint to wait for DATA_MARKER
HEAVY = ("dask.array", "bokeh", "numpy", "pandas", "dask.dataframe", "distributed.dashboard", "matplotlib")

_WRAPPER = r"""
import json, os, signal, sys, traceback
out = os.environ["NDTUI_BENCH_MODULES"]
WATCH = ("dask.array", "bokeh")
who = {}
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in WATCH and name not in who:
            frames = [f for f in traceback.extract_stack()[:-1] if "importlib" not in f.filename]
            who[name] = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno} {f.name}" for f in frames[-6:]]
        return None
sys.meta_path.insert(0, Watch())
def dump(*_):
    with open(out, "w") as f:
        json.dump({"modules": sorted(sys.modules), "who": who}, f)
signal.signal(signal.SIGUSR1, dump)
sys.argv = ["naist-dask-tui", "--backend", "local"]
from naist_dask_tui.cli import main
sys.exit(main())
"""


def _entry_point() -> list[str]:
    exe = Path(PY).with_name("naist-dask-tui")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("naist-dask-tui")
    return [found] if found else [PY, "-m", "naist_dask_tui"]


def launch(argv: list[str], env: dict, timeout: float = 60.0, on_paint=None) -> dict:
    """Run ``argv`` on a pty; returns times (s) to first paint and to first data."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=tempfile.gettempdir(),
        start_new_session=True, close_fds=True,
    )
    _ENVS[proc.pid] = env
    os.close(slave)
    buf = b""
    paint = data = None
    try:
        while time.perf_counter() - t0 < timeout and (paint is None or data is None):
            if paint is not None and time.perf_counter() - t0 > paint + DATA_WAIT:
                break  # painted, but no "connected" in the stream: reported, not waited for
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
                text = strip_ansi(buf.decode("utf-8", "replace"))
                now = time.perf_counter() - t0
                if paint is None and any(m in text for m in PAINT_MARKERS):
                    paint = now
                    if on_paint:
                        on_paint(proc)
                if data is None and DATA_MARKER in text:
                    data = now
            elif proc.poll() is not None:
                break
    finally:
        end = _stop(proc, master)
    return {"paint": paint, "data": data, "exit": end, "tail": strip_ansi(buf.decode("utf-8", "replace"))[-400:]}


def _stop(proc: subprocess.Popen, master: int) -> float | None:
    """SIGTERM (the screen detaches), drain the pty, wait; kill the group if stuck; then stop
    the keepers of this bench's state directory (a new cluster's keeper outlives its screen)."""
    t0 = time.perf_counter()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 30
    while proc.poll() is None and time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                os.read(master, 65536)
            except OSError:
                pass
    took = time.perf_counter() - t0
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        took = None
    else:  # nanny/worker processes left behind in the session: end them
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.close(master)
    except OSError:
        pass
    if "--backend" in proc.args:  # this launch started a keeper of its own
        _stop_keepers(proc_env(proc))
    return took


def _stop_keepers(env: dict) -> None:
    """`stop --all` in this bench's state directory, until no keeper of it runs: a screen
    stopped right after its first paint can leave a keeper that had not registered yet (and
    `stop --all` does not see it), which would run on until its idle timeout."""
    import psutil

    state = env.get("XDG_STATE_HOME", "")
    deadline = time.time() + 60
    while True:
        subprocess.run(_entry_point() + ["stop", "--all"], env=env, capture_output=True, timeout=120)
        left = [p for p in psutil.process_iter(["cmdline"])
                if state and "naist_dask_tui.core.keeper" in (p.info["cmdline"] or [])
                and any(state in arg for arg in p.info["cmdline"] or [])]
        if not left:
            return
        log(PART, f"keeper(s) {[p.pid for p in left]} still running after stop --all")
        if time.time() > deadline:
            for p in left:  # SIGTERM: the keeper stops its cluster and exits
                p.terminate()
            psutil.wait_procs(left, timeout=30)
            return
        time.sleep(0.5)


_ENVS: dict[int, dict] = {}


def proc_env(proc: subprocess.Popen) -> dict:
    return _ENVS.get(proc.pid, child_env())


def importtime(code: str, env: dict) -> tuple[float, dict[str, float]]:
    """(total ms of the statement's imports, {top-level package: ms of its own modules})."""
    res = subprocess.run([PY, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True)
    total = 0.0
    own: dict[str, float] = {}
    for line in res.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        self_us, cum, indent, name = int(m.group(1)), int(m.group(2)), len(m.group(3)), m.group(4)
        if indent == 1:  # imported by the statement itself (not by another module)
            total += cum / 1000
        pkg = name.split(".")[0]
        own[pkg] = own.get(pkg, 0.0) + self_us / 1000
    return total, own


def run(args, report: Report) -> None:
    quick = args.quick
    n = 2 if quick else 5
    xdg = tempfile.mkdtemp(prefix="bench-startup-xdg-")
    env = child_env(TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS), COLORTERM="truecolor")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        os.makedirs(f"{xdg}/{var.lower()}", exist_ok=True)
        env[var] = f"{xdg}/{var.lower()}"
    for k in [k for k in env if k.startswith("NAIST_DASK_TUI_")]:
        del env[k]
    argv = _entry_point() + ["--backend", "local"]

    # -- imports --------------------------------------------------------------------------------
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "import naist_dask_tui.app"], env=env, check=True)
        walls.append(time.perf_counter() - t0)
    base = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "pass"], env=env, check=True)
        base.append(time.perf_counter() - t0)
    total_app, tops_app = importtime("import naist_dask_tui.app", env)
    console_path = (
        "import naist_dask_tui.cli, naist_dask_tui.console, naist_dask_tui.core.cluster, "
        "naist_dask_tui.core.monitor, naist_dask_tui.app, naist_dask_tui.screens.main, "
        "naist_dask_tui.core.compute, naist_dask_tui.widgets.command_pane"
    )
    total_path, tops_path = importtime(console_path, env)
    report.add("python -c 'import naist_dask_tui.app' wall", median(walls), "s",
               f"bare interpreter {fmt(median(base))} s; median of 3")
    report.add("import naist_dask_tui.app (-X importtime)", total_app, "ms",
               "own time by package: "
               + ", ".join(f"{m} {ms:.0f}" for m, ms in sorted(tops_app.items(), key=lambda x: -x[1])[:5]))
    report.add("imports of the console path before paint", total_path, "ms", "cli, console, core.cluster, "
               "monitor, app, screens.main, compute pane (-X importtime)")
    # packages on the console path, by the import time of their own modules
    worst = sorted(tops_path.items(), key=lambda x: -x[1])[:7]
    report.add("  biggest package on that path (own modules)", worst[0][1] if worst else float("nan"), "ms",
               "; ".join(f"{p} {ms:.0f} ms" for p, ms in worst))

    # -- the cluster start inside the console's start-up ------------------------------------------
    code = (
        "import json, time\n"
        "t0 = time.perf_counter()\n"
        "from naist_dask_tui.core.settings import load_settings\n"
        "from naist_dask_tui.core.cluster import ClusterController\n"
        "t1 = time.perf_counter()\n"
        "c = ClusterController(load_settings({'backend': 'local'}, env={}))\n"
        "c.start()\n"
        "t2 = time.perf_counter()\n"
        "bokeh = __import__('sys').modules.get('bokeh') is not None\n"
        "c.close()\n"
        "print(json.dumps({'import': t1 - t0, 'start': t2 - t1, 'bokeh': bokeh}))\n"
    )
    starts, imps, bokeh = [], [], False
    for _ in range(1 if quick else 3):
        out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        try:
            d = json.loads(out.stdout.strip().splitlines()[-1])
            starts.append(d["start"])
            imps.append(d["import"])
            bokeh |= d["bokeh"]
        except Exception:
            report.note(f"ClusterController.start() timing failed: {out.stderr[-300:]!r}")
    report.add("  of which ClusterController.start() (local)", median(starts), "s",
               f"import core.cluster {fmt(median(imps))} s; Bokeh dashboard imported by it: {bokeh}")

    # -- first screen ---------------------------------------------------------------------------
    paints, datas, exits = [], [], []
    for i in range(n):
        res = launch(argv, env)
        if res["paint"] is None:
            report.note(f"launch {i + 1}: no first screen within 60 s; last output: {res['tail']!r}")
        else:
            paints.append(res["paint"])
        if res["data"] is not None:
            datas.append(res["data"])
        if res["exit"] is not None:
            exits.append(res["exit"])
        log(PART, f"launch {i + 1}: first paint {res['paint']}, first data {res['data']}, exit {res['exit']}")
    report.add("first painted screen (pty 120x40)", median(paints), "s",
               f"median of {len(paints)}: " + ", ".join(f"{x:.2f}" for x in paints))
    report.add("first data on screen ('connected')", median(datas), "s",
               f"median of {len(datas)}")
    report.add("SIGTERM to exit (the screen detaches)", median(exits), "s", f"median of {len(exits)}")

    # -- attaching a screen to a running cluster -------------------------------------------------
    attach_paints, attach_datas = [], []
    keeper = subprocess.Popen(
        [PY, "-m", "naist_dask_tui", "--headless", "--backend", "local", "--name", "bench",
         "--jobs", "1", "--cores", "1", "--memory", "1GB"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        t0 = time.time()
        while time.time() - t0 < 60:
            ls = subprocess.run(_entry_point() + ["ls"], env=env, capture_output=True, text=True)
            if "bench" in ls.stdout:
                break
            time.sleep(0.2)
        for i in range(n):
            res = launch(_entry_point() + ["attach", "bench"], env)
            if res["paint"] is not None:
                attach_paints.append(res["paint"])
            else:
                report.note(f"attach {i + 1}: no first screen within 60 s; last output: {res['tail']!r}")
            if res["data"] is not None:
                attach_datas.append(res["data"])
            elif res["paint"] is not None:
                report.note(f"attach {i + 1}: painted, no 'connected' within {DATA_WAIT:g} s; "
                            f"last output: {res['tail']!r}")
            log(PART, f"attach {i + 1}: first paint {res['paint']}, first data {res['data']}")
    finally:
        keeper.send_signal(signal.SIGTERM)
        keeper.wait(timeout=60)
    report.add("attach to a running cluster: first painted screen", median(attach_paints), "s",
               f"median of {len(attach_paints)}: " + ", ".join(f"{x:.2f}" for x in attach_paints))
    report.add("attach: first data on screen", median(attach_datas), "s", f"median of {len(attach_datas)}")

    # -- what is imported at the first paint ----------------------------------------------------
    mods_file = Path(xdg) / "modules.json"
    menv = dict(env, NDTUI_BENCH_MODULES=str(mods_file))
    launch([PY, "-c", _WRAPPER], menv, on_paint=lambda p: p.send_signal(signal.SIGUSR1))
    time.sleep(0.2)
    loaded: set[str] = set()
    if mods_file.exists():
        dumped = json.loads(mods_file.read_text())
        loaded = set(dumped["modules"])
        present = [h for h in HEAVY if h in loaded]
        report.add("modules loaded at first paint", len(loaded), "",
                   "heavy ones loaded: " + (", ".join(present) if present else "none of " + ", ".join(HEAVY)))
        for name, stack in dumped.get("who", {}).items():
            report.note(f"{name} first imported from: " + " <- ".join(reversed(stack)))
    else:
        report.note("could not record sys.modules at the first paint")
    shutil.rmtree(xdg, ignore_errors=True)

    first = median(paints)
    report.goal(f"first screen < {GOAL_S:g} s (naist-dask-tui --backend local)",
                (first < GOAL_S) if paints else None, f"{fmt(first)} s median of {len(paints)}")
    attached = median(attach_paints)
    report.goal(f"attach to a running cluster: first screen < {ATTACH_GOAL_S:g} s",
                (attached < ATTACH_GOAL_S) if attach_paints else None,
                f"{fmt(attached)} s median of {len(attach_paints)}")
    if loaded:
        heavy = [h for h in ("dask.array", "bokeh") if h in loaded]
        report.goal("heavy imports deferred (dask.array, bokeh not loaded at first paint)", not heavy,
                    "loaded: " + ", ".join(heavy) if heavy else "neither loaded")
    else:
        report.goal("heavy imports deferred (dask.array, bokeh not loaded at first paint)", None, "not recorded")
    if paints and first >= GOAL_S:
        report.note("slow start-up; biggest imports on the console path: "
                    + "; ".join(f"{p} {ms:.0f} ms" for p, ms in worst))


if __name__ == "__main__":
    sys.exit(part_main(PART, run, __doc__))
