"""End to end on the local backend (no SGE needed): the installed ``naist-dask-tui`` in tmux at
80x24, keys typed as a person types them, assertions on the screen's text.

* the compute pane at 80x24: the editor, a compact progress view and the output are all in
  sight, and ctrl+o gives the output the whole screen and back;
* the key map: each key does what the help says from where the help says it works (in the
  editor: ctrl+ and F-keys; outside it: the printable keys), and the footer at 80 columns
  shows the keys that matter most.
"""

from __future__ import annotations

import curses
import shutil

import pytest

from tests.tmux_helper import Tmux, until

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]

FLAGS = ["--backend", "local", "--jobs", "1", "--cores", "1", "--memory", "1GB"]


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path, "local")
    t.start(*FLAGS, "--local-directory", str(tmp_path))
    until(t, lambda: "connected" in t.screen() and "workers 1" in " ".join(t.screen().split()),
          60, "the console's first screen with its worker")
    yield t
    # nothing may outlive the terminal; the 30 s exit bound is tested on SGE (test_limits_sge)
    # and by test_console_signals; here, under a full suite's load, one exit took just over 30 s
    left = t.end(timeout=60)
    assert not left, f"the console outlived its terminal: {left}"


def footer(screen: str) -> str:
    return screen.rstrip("\n").splitlines()[-1]


def test_footer_at_80_columns_shows_the_keys_that_matter(tmux):
    line = footer(tmux.screen())
    for key in ("q Quit", "+ Job+", "s Scale", "/ Filter", "l Log", "? Help", "palette"):
        assert key in line, line


def test_compute_pane_at_80x24_shows_editor_progress_and_output(tmux):
    tmux.keys("6")
    until(tmux, lambda: "^r run" in tmux.screen(), 10, "the compute pane")
    tmux.literal('print("MARK", 6*7)')
    tmux.keys("C-r")
    until(tmux, lambda: "MARK 42" in tmux.screen(), 30, "the printed line on screen")
    # a computation with a progress view: its output is still in sight at 80x24
    tmux.type("C-n", "F2")
    until(tmux, lambda: "lab's test computation" in tmux.screen(), 10, "the lab snippet")
    tmux.keys("C-r")
    until(tmux, lambda: "Out [2]" in tmux.screen(), 120, "the lab computation's result")
    screen = tmux.screen()
    assert "x = da.random.random" in screen  # the editor
    assert "shape=(4000,)" in screen  # the result, in the output log
    progress_lines = [line for line in screen.splitlines() if "━" in line and "/" in line]
    assert len(progress_lines) <= 3, screen  # compact progress
    assert "overall (done)" in progress_lines[-1], screen
    # x's and y's chunks are made in the sum tasks that use them (root fusion): no group of their own
    assert any(line.strip("│ ").startswith("sum ") for line in progress_lines), screen
    assert not any("random_sample" in line for line in progress_lines), screen
    # one key gives the output the whole screen, and back
    tmux.keys("C-o")
    until(tmux, lambda: "2 Workers" not in tmux.screen() and "^r run" not in tmux.screen(), 10,
          "the output maximized (no tabs, no editor)")
    screen = tmux.screen()
    assert "MARK 42" in screen and "Out [2]" in screen
    tmux.keys("C-o")
    until(tmux, lambda: "2 Workers" in tmux.screen() and "^r run" in tmux.screen(), 10, "back")


def test_documented_keys_work_from_where_they_are_documented(tmux):
    tmux.keys("6")
    until(tmux, lambda: "^r run" in tmux.screen(), 10, "the compute pane (6)")
    # in the editor: F-keys and ctrl keys, never typed as text
    tmux.keys("F8")
    until(tmux, lambda: "map_blocks(slow)" in tmux.screen(), 10, "f8: the slow snippet")
    tmux.keys("C-n")
    until(tmux, lambda: "map_blocks(slow)" not in tmux.screen(), 10, "ctrl+n: an empty editor")
    tmux.literal("6 * 7")
    tmux.keys("C-t")
    until(tmux, lambda: "(persist)" in tmux.screen() and "42" in tmux.screen(), 30, "ctrl+t: run+persist")
    tmux.keys("F1")
    until(tmux, lambda: "Compute panel" in tmux.screen(), 10, "f1 from the editor: help")
    tmux.type("Escape", pause=0.5)
    until(tmux, lambda: "Compute panel" not in tmux.screen(), 10, "help closed")
    tmux.keys("C-PageDown")
    until(tmux, lambda: "╭─ Overview" in tmux.screen(), 10, "ctrl+pagedown from the editor: the next panel (the first)")
    tmux.keys("C-PageUp")
    until(tmux, lambda: "╭─ Compute" in tmux.screen(), 10, "ctrl+pageup: back to compute")
    # esc leaves the editor; then the printable keys work again (a pause as a person makes:
    # escape and a key within a few ms is how a terminal sends alt+key)
    tmux.type("Escape", pause=0.5)
    tmux.keys("5")
    until(tmux, lambda: "╭─ Local workers" in tmux.screen(), 10, "esc, then 5: the jobs panel")
    tmux.keys("?")
    until(tmux, lambda: "Help: every key" in tmux.screen(), 10, "?: help")
    tmux.type("Escape", pause=0.5)
    tmux.keys("2")
    until(tmux, lambda: "╭─ Workers" in tmux.screen(), 10, "2: the workers panel")
    tmux.keys("1")
    until(tmux, lambda: "╭─ Overview" in tmux.screen() and "Tasks done" in tmux.screen(), 10,
          "1: the overview, its graphs")


def test_a_plain_xterms_keys_reach_the_bindings():
    """What a plain xterm sends (its terminfo entry) is parsed into the keys the bindings use."""
    from textual._xterm_parser import XTermParser

    from naist_dask_tui.keymap import binding_ids

    curses.setupterm("xterm")
    wanted = {"kf1": "f1", "kf2": "f2", "kf3": "f3", "kf4": "f4", "kf5": "f5", "kf8": "f8",
              "kNXT5": "ctrl+pagedown", "kPRV5": "ctrl+pageup", "kUP5": "ctrl+up", "kDN5": "ctrl+down"}
    bound = {k for b in binding_ids().values() for k in b.key.split(",")}
    for cap, key in wanted.items():
        seq = curses.tigetstr(cap).decode()
        keys = [e.key for e in XTermParser().feed(seq) if hasattr(e, "key")]
        assert keys == [key], (cap, seq, keys)
        assert key in bound, key
    for ctrl in "rtonlsq":  # ctrl+letters are single control bytes in every terminal
        keys = [e.key for e in XTermParser().feed(chr(ord(ctrl) - 96)) if hasattr(e, "key")]
        assert keys == [f"ctrl+{ctrl}"], keys


def test_a_printing_warning_and_failing_task_leaves_no_stray_text(tmux):
    tmux.keys("6")
    until(tmux, lambda: "^r run" in tmux.screen(), 10, "the compute pane")
    # one line (typed newlines would be auto-indented by the editor)
    code = ("client.submit(lambda x: [print('STRAY-' + 'PRINT'), "
            "__import__('warnings').warn('STRAY-' + 'WARN'), 1 / 0], 1).result()")
    tmux.literal(code)
    tmux.keys("C-r")
    until(tmux, lambda: "ZeroDivisionError" in tmux.screen(), 30, "the task's error in the output log")
    import time

    time.sleep(2)  # anything a worker would write over the screen comes now
    screen = tmux.screen()
    assert "STRAY-PRINT" not in screen and "STRAY-WARN" not in screen, screen
    # the worker's log file has it, and l shows it
    tmux.type("Escape", pause=0.5)
    tmux.keys("2")
    until(tmux, lambda: "╭─ Workers" in tmux.screen(), 10, "the workers panel")
    tmux.keys("l")
    until(tmux, lambda: "STRAY-WARN" in tmux.screen() and "Compute Failed" in tmux.screen(), 20,
          "the task's warning and failure in the worker's log view")
    assert tmux.screen().count("Compute Failed") == 1, tmux.screen()
