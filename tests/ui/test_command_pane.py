"""Pilot tests of the compute pane with a real LocalCluster session."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

distributed = pytest.importorskip("distributed")

from naist_dask_tui.core.compute import ComputeSession, lab_snippet  # noqa: E402
from naist_dask_tui.core.history_store import HistoryStore  # noqa: E402
from naist_dask_tui.widgets.command_pane import ComputePane  # noqa: E402
from naist_dask_tui.widgets.progress_view import ProgressView  # noqa: E402

STYLES = Path(__file__).resolve().parents[2] / "styles" / "compute.tcss"

SLOW = (
    "import time\n"
    "def slow(block):\n"
    "    time.sleep({delay})\n"
    "    return block\n"
    "da.ones(({n},), chunks=1).map_blocks(slow, dtype=float).sum()"
)


@pytest.fixture(scope="module")
def cluster_client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield cluster, client


@pytest.fixture()
def session(cluster_client):
    cluster, client = cluster_client
    return ComputeSession(cluster=cluster, client=client)


class PaneApp(App):
    CSS_PATH = STYLES

    def __init__(self, session: ComputeSession, history: HistoryStore) -> None:
        super().__init__()
        self.session = session
        self.history = history

    def compose(self) -> ComposeResult:
        yield ComputePane(self.session, history=self.history, id="pane")


def log_text(pane: ComputePane) -> str:
    return "\n".join("".join(seg.text for seg in strip) for strip in pane.log_widget.lines)


async def wait_until(pilot, condition, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def test_type_run_see_progress_and_result(session, tmp_path):
    messages = []
    app = PaneApp(session, HistoryStore(tmp_path / "h.jsonl"))
    async with app.run_test(size=(120, 40), message_hook=messages.append) as pilot:
        pane = app.query_one(ComputePane)
        pane.editor.focus()
        pane.editor.load_text(SLOW.format(delay=0.1, n=40) + " + ")
        pane.editor.move_cursor(pane.editor.document.end)
        await pilot.press("4", "2")  # typed into the editor
        assert pane.editor.text.endswith(" + 42")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: pane.running, 5, "the run to start")
        view = pane.query_one(ProgressView)
        seen = []
        deadline = time.monotonic() + 60
        while pane.running and time.monotonic() < deadline:
            snap = view.snapshot
            if snap is not None:
                seen.append((snap.done, snap.total))
            await pilot.pause(0.1)
        assert not pane.running
        # the hook sees a bubbling message once per node it reaches: keep one of each
        finished = list({id(m): m for m in messages if isinstance(m, ComputePane.RunFinished)}.values())
        assert len(finished) == 1 and finished[0].result.ok, finished[0].result.error
        assert finished[0].result.value_repr == "82.0"
        # the bars moved: several distinct counts while running, complete at the end
        assert len({d for d, _ in seen}) >= 2, seen
        final = view.snapshot
        assert final is not None and final.done == final.total > 40
        text = log_text(pane)
        assert "82.0" in text and "✓ ok" in text and "tasks" in text
        assert any(isinstance(m, ComputePane.RunStarted) for m in messages)
        # the run went to the history file and comes back with ctrl+up
        assert HistoryStore(tmp_path / "h.jsonl").codes()[-1].endswith("+ 42")
        pane.editor.load_text("draft")
        await pilot.press("ctrl+up")
        assert pane.editor.text.endswith("+ 42")
        await pilot.press("ctrl+down")
        assert pane.editor.text == "draft"


async def test_escape_cancels_a_long_run(session, tmp_path):
    app = PaneApp(session, HistoryStore(tmp_path / "h.jsonl"))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ComputePane)
        pane.editor.focus()
        pane.editor.load_text(SLOW.format(delay=1.0, n=200))
        await pilot.press("ctrl+r")
        view = pane.query_one(ProgressView)
        await wait_until(
            pilot, lambda: view.snapshot is not None and view.snapshot.processing > 0, 20,
            "tasks processing",
        )
        t0 = time.monotonic()
        await pilot.press("escape")
        await wait_until(pilot, lambda: not pane.running, 10, "the cancel")
        assert time.monotonic() - t0 < 5
        assert "cancelled" in log_text(pane)
        # escape with nothing running leaves the editor instead (no cancel, no error)
        pane.editor.focus()
        await pilot.press("escape")
        assert not pane.running
        # the pane is usable again
        pane.editor.load_text("6 * 7")
        pane.editor.focus()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "Out [" in log_text(pane) and "42" in log_text(pane), 20, "the next run")


async def test_snippets_and_errors(session, tmp_path):
    app = PaneApp(session, HistoryStore(tmp_path / "h.jsonl"))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ComputePane)
        pane.editor.focus()
        await pilot.press("f2")
        assert pane.editor.text == lab_snippet(False)
        assert pane.editor.language == "python"  # tree-sitter highlighting is available
        pane.editor.load_text("x = (1,")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not pane.running and "SyntaxError" in log_text(pane), 10, "error")
        assert "✗ error" in log_text(pane)
        await pilot.press("ctrl+s")
        exports = list((tmp_path).glob("**/session-*.md"))
        # the export goes to the XDG state dir (isolated by tests/conftest.py)
        from naist_dask_tui.core.paths import state_dir

        assert list((state_dir() / "exports").glob("session-*.md")) or exports
