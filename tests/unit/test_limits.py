"""max_jobs: the ceiling on any request for jobs, its default from the backend, and how many
jobs the queue runs at once (what pends). Parsing is checked on SGE's own output formats; the
real queue is read in tests/sge/test_limits_sge.py."""

from __future__ import annotations

import pytest

from naist_dask_tui.core import limits
from naist_dask_tui.core.settings import load_settings

QSTAT_GC = """\
CLUSTER QUEUE                   CQLOAD   USED    RES  AVAIL  TOTAL aoACDS  cdsuE  
--------------------------------------------------------------------------------
grid_short.q                      0.20      0      0      8      8      0      0 
grid_long.q                       0.50     10      0     14     32      0      8 
"""  # noqa: W291  (qstat -g c pads its lines with spaces: its output verbatim)


def settings(**over):
    values = dict(backend="sge", jobs=0)
    values.update(over)
    return load_settings(values, env={}, dask_config={})


def fake_run(outputs):
    def run(command):
        key = " ".join(command)
        if key not in outputs:
            raise OSError(f"`{key}` failed: not here")
        return outputs[key]

    return run


def test_qstat_gc_counts_usable_slots():
    assert limits.parse_qstat_gc(QSTAT_GC) == {"grid_short.q": (8, 8), "grid_long.q": (32, 24)}
    assert limits.parse_qstat_gc("") == {}


def test_capacity_divides_the_queue_by_the_slots_of_one_job():
    run = fake_run({"qstat -g c": QSTAT_GC, "qconf -sp smp": "pe_name smp\nslots 999\n"})
    s = settings(queue="grid_short.q", job_extra_directives=["-pe smp 2"])
    cap = limits.sge_capacity(s, run)
    assert cap.runnable == 4 and "8 slots" in cap.detail and "2 per job" in cap.detail
    # no PE: one slot a job; a list and a wildcard add the queues up
    cap = limits.sge_capacity(settings(queue="grid_*.q", job_extra_directives=[]), run)
    assert (cap.runnable, cap.size) == (32, 40) and "32 slots up of 40" in cap.detail
    # the PE's own slots cap it
    run = fake_run({"qstat -g c": QSTAT_GC, "qconf -sp smp": "pe_name smp\nslots 6\n"})
    assert limits.sge_capacity(s, run).runnable == 3


def test_default_max_jobs_is_twice_what_the_queue_runs():
    run = fake_run({"qstat -g c": QSTAT_GC, "qconf -sp smp": "slots 999\n"})
    s = settings(queue="grid_short.q", job_extra_directives=["-pe smp 1"])
    lim = limits.resolve(s, "sge", limits.sge_capacity(s, run))
    assert lim.max_jobs == 16 and lim.runnable == 8
    assert "2 x the 8 jobs queue grid_short.q" in lim.origin
    lim.check(16)
    with pytest.raises(limits.JobLimitError) as err:
        lim.check(10000, "scale")
    line = str(err.value)
    assert line.startswith("max_jobs: 10000 jobs asked for (scale) is above max_jobs 16")
    assert "--max-jobs" in line and "\n" not in line
    assert lim.pending(8) == 0 and lim.pending(11) == 3
    assert "3 would pend" in lim.pend_sentence(11) and lim.pend_sentence(8) == ""


def test_a_queue_briefly_down_keeps_its_ceiling():
    down = QSTAT_GC.replace("8      8      0      0 ", "0      8      0      8 ")
    assert down != QSTAT_GC
    s = settings(queue="grid_short.q", job_extra_directives=[])
    lim = limits.resolve(s, "sge", limits.sge_capacity(s, fake_run({"qstat -g c": down})))
    assert lim.runnable == 0 and lim.max_jobs == 16 and lim.pending(2) == 2


def test_explicit_max_jobs_wins_and_says_where_it_came_from():
    s = load_settings({"backend": "sge"}, env={"NAIST_DASK_TUI_MAX_JOBS": "3"}, dask_config={})
    lim = limits.resolve(s, "sge", limits.Capacity(8, "queue q (8 slots, 1 per job)"))
    assert lim.max_jobs == 3 and "NAIST_DASK_TUI_MAX_JOBS" in lim.origin
    with pytest.raises(limits.JobLimitError, match="max_jobs: 4 jobs asked for"):
        lim.check(4)


def test_unreadable_queue_falls_back_and_says_why():
    s = settings(queue="grid_short.q")
    cap = limits.sge_capacity(s, fake_run({}))
    assert cap.runnable is None and "not here" in cap.error
    lim = limits.resolve(s, "sge", cap)
    assert lim.max_jobs == limits.FALLBACK_MAX_JOBS and "could not be read" in lim.origin
    assert lim.pending(1000) == 0  # unknown: nothing to say about pending


def test_local_default_is_the_cores_and_nothing_pends():
    lim = limits.resolve(settings(backend="local"), "local", limits.local_capacity(6))
    assert lim.max_jobs == 6 and lim.pending(6) == 0
    with pytest.raises(limits.JobLimitError, match="7 workers asked for"):
        lim.check(7)


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_bad_max_jobs_is_one_line_naming_the_field(value):
    with pytest.raises(Exception) as err:
        load_settings({"max_jobs": value}, env={}, dask_config={})
    assert str(err.value).startswith("max_jobs: ") and "(from --max-jobs)" in str(err.value)


def test_local_view_keeps_the_workers_memory_within_the_machine():
    GiB = 2**30
    s = load_settings({"backend": "local"}, env={}, dask_config={})
    local, lim = limits.local_view(s, cpu_count=8, total_memory=16 * GiB)
    assert lim.max_jobs == 8 and local.jobs == 2
    assert local.memory_bytes * lim.max_jobs <= 16 * GiB
    # an explicit --memory: the default ceiling is what fits
    local, lim = limits.local_view(settings(backend="local", memory="6GiB"), cpu_count=8,
                                   total_memory=16 * GiB)
    assert lim.max_jobs == 2 and local.memory == "6GiB" and "16.00GiB for workers of 6GiB" in lim.origin
    # both explicit and too much: refused, naming max_jobs
    with pytest.raises(limits.JobLimitError, match=r"^max_jobs: 4 local workers x memory 6GiB is more"):
        limits.local_view(settings(backend="local", memory="6GiB", max_jobs=4), cpu_count=8,
                          total_memory=16 * GiB)
