"""ComputeSession against a real LocalCluster: results, progress, cancel, errors, limits."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from naist_dask_tui.core.compute import (  # noqa: E402
    BoundedText,
    ComputeSession,
    lab_snippet,
    snippets,
)
from naist_dask_tui.core.history_store import HistoryStore  # noqa: E402

SLOW = """\
import time
def slow(block):
    time.sleep({delay})
    return block
da.ones(({n},), chunks=1).map_blocks(slow, dtype=float).sum()
"""


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cl:
        yield cl


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as c:
        yield c


@pytest.fixture()
def session(client, cluster):
    return ComputeSession(client, cluster)


def scheduler_states(client) -> dict[str, int]:
    def count(dask_scheduler):
        out: dict[str, int] = {}
        for ts in dask_scheduler.tasks.values():
            out[ts.state] = out.get(ts.state, 0) + 1
        return out

    return client.run_on_scheduler(count)


def wait_idle(client, timeout: float = 5.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    states = scheduler_states(client)
    while time.monotonic() < deadline:
        states = scheduler_states(client)
        if not any(states.get(s) for s in ("processing", "queued", "waiting", "no-worker")):
            break
        time.sleep(0.1)
    return states


def test_core_never_imports_textual():
    code = (
        "import sys, naist_dask_tui.core.compute, naist_dask_tui.core.progress, "
        "naist_dask_tui.core.history_store; "
        "print([m for m in ('textual', 'rich') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lab_computation_matches_numpy(session):
    code = (
        "rs = da.random.RandomState(1234)\n"
        "x = rs.random_sample((300, 200, 10), chunks=(100, 100, 5))\n"
        "y = rs.random_sample((300, 200, 10), chunks=(100, 100, 5))\n"
        "(da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))\n"
    )
    result = session.run(code)
    assert result.ok, result.error
    assert result.task_count > 0
    got = session.namespace["_"]
    xs = session.run("x").value_repr  # small enough to gather: exercises the plain path
    assert xs.startswith("array(")
    x = session.namespace["x"].compute()
    y = session.namespace["y"].compute()
    expected = (np.arcsin(x) + np.arccos(y)).sum(axis=(1, 2))
    assert got.shape == (300,)
    assert np.allclose(got, expected)


def test_lab_snippet_runs_and_says_its_size(session):
    local = lab_snippet(False)
    assert local.splitlines()[0].startswith("#") and "local" in local.splitlines()[0]
    full = lab_snippet(True)
    assert "(100000, 100000, 10)" in full and "chunks=(1000, 1000, 5)" in full
    assert "(da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))" in full
    assert session.is_local
    assert session.snippets()[0].code == local
    assert snippets(True)[0].code == full
    result = session.run(lab_snippet(False, shape=(2000, 2000, 10)))
    assert result.ok, result.error
    value = session.namespace["_"]
    # E[arcsin U] + E[arccos V] = pi/2 for uniform U, V: each row sums 20000 such pairs
    assert np.allclose(value / 20000, np.pi / 2, rtol=0.02)


def test_other_snippets_run(session):
    for snippet in snippets(False)[1:3]:
        result = session.run(snippet.code)
        assert result.ok, (snippet.name, result.error)


def test_progress_counts_are_consistent(session):
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            snap = session.progress()
            if snap is not None:
                samples.append(snap)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = session.run(SLOW.format(delay=0.05, n=60) + "")
    finally:
        stop.set()
        sampler.join()
    assert result.ok, result.error
    assert len(samples) > 5
    for snap in samples:
        assert snap.done <= snap.total
        for g in snap.groups:
            parts = g.done + g.erred + g.processing + g.queued + g.waiting + g.no_worker + g.released
            assert parts == g.total, g
            assert 0 <= g.done <= g.total
    assert any(0 < s.done < s.total for s in samples), "saw no intermediate progress"
    final = result.progress
    assert final is not None and final.finished
    assert final.total == result.task_count >= 60
    for g in final.groups:
        assert g.done == g.total, g
    # queued tasks are counted (get_task_prefix_states would miss them)
    assert any(s.queued > 0 for s in samples)


def test_cancel_stops_a_long_computation(session, client):
    timer = threading.Timer(1.5, session.cancel)
    timer.start()
    t0 = time.monotonic()
    result = session.run(SLOW.format(delay=1.0, n=200))
    elapsed = time.monotonic() - t0
    assert result.cancelled and not result.ok
    assert elapsed < 5.0
    states = wait_idle(client, timeout=3.0)
    assert not states.get("processing") and not states.get("queued"), states
    # the console is usable again
    assert session.run("1 + 1").value_repr == "2"


def test_cancel_a_compute_inside_the_code_and_a_python_loop(session, client):
    session.run("import time\ndef slow(b):\n    time.sleep(1)\n    return b")
    threading.Timer(1.5, session.cancel).start()
    t0 = time.monotonic()
    result = session.run("v = da.ones((200,), chunks=1).map_blocks(slow, dtype=float).sum().compute()")
    assert result.cancelled and time.monotonic() - t0 < 5.0
    states = wait_idle(client, timeout=3.0)
    assert not states.get("processing") and not states.get("queued"), states

    threading.Timer(0.5, session.cancel).start()
    t0 = time.monotonic()
    result = session.run("n = 0\nwhile True:\n    n += 1")
    assert result.cancelled and time.monotonic() - t0 < 3.0
    assert session.run("n > 0").value_repr == "True"


def test_task_exception_and_syntax_error(session):
    code = (
        "def boom(block):\n"
        "    raise ValueError('bad block')\n"
        "da.ones((4, 4), chunks=2).map_blocks(boom, dtype=float).sum()\n"
    )
    result = session.run(code)
    assert not result.ok and not result.cancelled
    assert "ValueError: bad block" in result.error
    # named by the group of the first task that raised (map_blocks is fused into sum's tasks)
    assert "A task failed in task group 'sum';" in result.error
    assert "in boom" in result.error

    result = session.run("x = (1,\n")
    assert not result.ok
    assert "SyntaxError" in result.error and "<console-" in result.error

    result = session.run("def f():\n    return 1 / 0\nf()")
    assert not result.ok
    assert "ZeroDivisionError" in result.error
    assert "in f" in result.error and "return 1 / 0" in result.error
    assert "naist_dask_tui" not in result.error  # user frames only

    for code in ("raise KeyboardInterrupt", "raise SystemExit(3)"):
        result = session.run(code)
        assert not result.ok and not result.cancelled
    assert session.run("2 * 21").value_repr == "42"


def test_too_large_result_is_refused(session, client):
    session.max_result_bytes = 1 * 2**20
    try:
        result = session.run("da.ones((1000, 1000), chunks=100)")  # 8 MB
        assert not result.ok and result.refused
        assert "persist" in result.error and "MiB" in result.error
        assert result.task_count == 0  # refused before anything ran
        # unknown size (nan chunks): refused after computing, before gathering
        result = session.run("a = da.ones((1000, 1000), chunks=100)\na[a[:, 0] > 0]")
        assert not result.ok and result.refused, result.error
        # persisting is allowed
        result = session.run("da.ones((1000, 1000), chunks=100)", persist=True)
        assert result.ok and result.persisted, result.error
        assert "dask.array" in result.value_repr
    finally:
        session.max_result_bytes = 256 * 2**20
        session.namespace.pop("_", None)


def test_names_persist_and_plain_values(session):
    assert session.run("a = 40\nb = 2").ok
    result = session.run("print('sum is', a + b)\na + b")
    assert result.value_repr == "42" and result.stdout == "sum is 42\n"
    assert session.run("None").value_repr == ""
    for name in ("da", "np", "dask", "client", "cluster"):
        assert session.run(f"{name} is not None").value_repr == "True"


def test_output_is_bounded(session):
    result = session.run("for i in range(200000):\n    print('x' * 50)")
    assert result.ok
    assert len(result.stdout) < 70_000
    assert result.stdout_cut > 9_000_000
    assert "characters of output cut" in result.stdout
    big = session.run("list(range(1_000_000))")
    assert len(big.value_repr) < 25_000


def test_bounded_text_keeps_head_and_tail():
    buf = BoundedText(100)
    for i in range(1000):
        buf.write(f"{i:04d}\n")
    text = buf.getvalue()
    assert text.startswith("0000\n")
    assert text.rstrip().endswith("0999")
    assert buf.cut == 5000 - 100


def test_worker_lost_mid_run_is_readable():
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cl, distributed.Client(cl) as c:
        session = ComputeSession(c, cl)
        code = (
            "import os\n"
            "def die(block):\n"
            "    if block.size:\n"
            "        os._exit(1)\n"
            "    return block\n"
            "da.ones((2,), chunks=1).map_blocks(die, dtype=float).sum()\n"
        )
        result = session.run(code)
        assert not result.ok and not result.cancelled
        assert "worker died" in result.error.lower(), result.error
        assert session.run("1").value_repr == "1"


def test_history_store_roundtrip(session, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    store = HistoryStore(max_entries=5)
    assert store.path == tmp_path / "naist-dask-tui" / "history.jsonl"
    for i in range(8):
        store.append(session.run(f"{i} * 2"))
    store.append(session.run("1/0"))
    records = store.load()
    assert len(records) == 5
    assert records[-1]["status"] == "error" and "ZeroDivisionError" in records[-1]["error"]
    assert store.codes()[-2:] == ["7 * 2", "1/0"]
    lines = store.path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)
    md = store.export(tmp_path / "t.md")
    text = md.read_text()
    assert "```python\n7 * 2\n```" in text and "14" in text
    py = store.export(tmp_path / "t.py")
    compile(py.read_text(), "t.py", "exec")


def test_a_pasted_script_uses_the_consoles_cluster(session, client):
    """Client() is the console's client, a new cluster is refused with what to do instead,
    and the script's __main__ block runs."""
    import dask_jobqueue  # noqa: F401 - imported by the console (core/cluster.py) at start
    from distributed.deploy.spec import SpecCluster

    clusters = set(SpecCluster._instances)
    script = (
        "from dask.distributed import Client\n"
        "def main():\n"
        "    c = Client()\n"
        "    total = c.compute(da.ones(100, chunks=10).sum()).result()\n"
        "    print('total', total)\n"
        "    c.close()\n"
        "    return c\n"
        "if __name__ == '__main__':\n"
        "    mine = main()\n"
    )
    result = session.run(script)
    assert result.ok, result.error
    assert "total 100.0" in result.stdout and "console's own client" in result.stdout
    assert result.task_count > 0  # its graph was the run's: the progress view sees it
    assert session.namespace["mine"]._client is client and client.status == "running"
    with Client_from_pane(session, "import distributed\ndistributed.Client(cluster)") as r:
        assert r.ok and "Client" in r.value_repr

    for code in (
        "from distributed import LocalCluster\ncluster2 = LocalCluster(n_workers=2)",
        "import dask_jobqueue\nx = 1\ncluster2 = dask_jobqueue.SGECluster(cores=1, memory='1GB')",
        "import dask.distributed\ndask.distributed.LocalCluster()",
    ):
        result = session.run(code)
        assert not result.ok and "is not started in the console" in result.error, result.error
        assert "`cluster` and `client` are in scope" in result.error
        assert "(line 2)" in result.error or "(line 3)" in result.error
    assert not set(SpecCluster._instances) - clusters, "a second cluster was started"
    assert "cluster2" not in session.namespace


class Client_from_pane:
    def __init__(self, session, code):
        self.result = session.run(code)

    def __enter__(self):
        return self.result

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize(
    "code",
    [
        "big = da.ones((1000, 1000), chunks=100).compute()",
        "import dask\nbig, = dask.compute(da.ones((1000, 1000), chunks=100))",
        "f = client.compute(da.ones((1000, 1000), chunks=100))\nbig = f.result()",
        "big = client.gather(client.compute(da.ones((1000, 1000), chunks=100)))",
        "big = np.asarray(da.ones((1000, 1000), chunks=100))",
    ],
    ids=["compute", "dask.compute", "future.result", "client.gather", "np.asarray"],
)
def test_every_way_of_bringing_a_result_here_is_bounded(session, client, code):
    session.max_result_bytes = 1 * 2**20
    try:
        result = session.run(code)
        assert not result.ok and result.refused, result.error
        assert result.error.startswith("Result refused: it is 7.63 MiB, over the console's limit of 1.00 MiB")
        assert "big" not in session.namespace
        # small results still come back
        assert session.run("small = da.ones(10, chunks=5).compute()\nsmall.sum()").value_repr == "10.0"
    finally:
        session.max_result_bytes = 256 * 2**20
    # outside a run the console's own client is not limited
    assert client.compute(da_ones_sum()).result() == 10.0


def da_ones_sum():
    import dask.array as da

    return da.ones(10, chunks=5).sum()
