"""Smoke test of the benchmark runner: `python -m bench --quick --only probe` runs end to end
and prints its table with the goal lines. No timing is asserted (shared, noisy machines)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_quick_probe_prints_the_table_with_goals(tmp_path):
    out_json = tmp_path / "bench.json"
    res = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "probe", "--json", str(out_json)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
    )
    out = res.stdout
    assert res.returncode == 0, out[-3000:] + res.stderr[-3000:]
    table = out[out.rindex("naist-dask-tui benchmarks") :]
    assert "GOALS" in table
    assert "probe, changed rows (1 s steady state) sched CPU" in table
    assert "scheduler_info(n_workers=-1) sched CPU" in table
    assert "HTTP /json/identity.json" in table and "HTTP /metrics" in table
    goal_lines = [line for line in table.splitlines() if "probe >= 8x cheaper" in line or "probe < 2 ms" in line
                  or "probe <= scheduler_info" in line]
    # at 1,000 and at 2,000 workers (not measured in --quick), under 2 ms, never above scheduler_info
    assert len(goal_lines) == 4 and sum("8x cheaper" in line for line in goal_lines) == 2
    assert all(any(v in line for v in ("met", "NOT met", "not measured")) for line in goal_lines)
    assert "ERROR" not in table
    assert out_json.exists()


def test_the_lab_part_feeds_the_progress_plugin_a_small_graph_of_the_same_shape():
    """bench_lab's in-process replay drives the real plugin (its import broke once unseen):
    every key of the graph ends counted as done."""
    from bench.bench_lab import plugin_at_graph_size

    res = plugin_at_graph_size((200, 200, 10))
    assert res["tasks"] > 20 and res["done"] == res["tasks"] and res["us_per_task"] > 0
