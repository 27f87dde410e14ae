"""The job ledger, its reconcile step and the rows built from it, with recorded inputs: what a
qstat reading and the scheduler's workers looked like at each refresh. No cluster, no SGE."""

from __future__ import annotations

from dataclasses import replace

from naist_dask_tui.core import jobledger
from naist_dask_tui.core.jobledger import Ledger, ended_rows, job_detail, job_rows
from naist_dask_tui.core.reconcile import (
    FAILED_STARTS_LIMIT,
    STARTUP_GRACE,
    Observation,
    Policy,
    failed_starts_blocked,
    reconcile,
)
from naist_dask_tui.core.snapshot import JobState, SgeJob

T0 = 1_800_000_000.0


def sj(job_id: str, raw: str = "r", host: str | None = "n1", started: float | None = T0,
       reason: str = "") -> SgeJob:
    from naist_dask_tui.core.sge import map_state

    return SgeJob(job_id=job_id, name="ndtui.vm.1", owner="me", state=map_state(raw), raw_state=raw,
                  queue="grid_short.q", host=host, slots=1, submitted=T0 - 5, started=started, reason=reason)


class Logs:
    """Output files by path (None: the file does not exist)."""

    def __init__(self, **files: str) -> None:
        self.files = {f"/logs/{k}": v for k, v in files.items()}

    def __call__(self, path):
        text = self.files.get(path)
        return None if text is None else tuple(text.splitlines())


def policy(logs: Logs | None = None, **over) -> Policy:
    values = dict(has_queue=True, grace=15.0, log_dir="/logs", read_tail=logs or Logs(),
                  log_path=lambda name, job_id: f"/logs/{name}" if job_id else None)
    values.update(over)
    return Policy(**values)


def submitted(ledger: Ledger, *names_ids: tuple[str, str], at: float = T0 - 10) -> None:
    for name, _job_id in names_ids:
        ledger.ensure(name, submitted_at=at)
    ledger.note_job_ids(dict(names_ids), at + 1)


NOTHING = object()


def obs(now: float, specs, workers=NOTHING, qstat=None, qstat_time=None) -> Observation:
    return Observation(
        now=now, specs={n: (n,) for n in specs},
        workers={} if workers is NOTHING else workers,
        qstat=None if qstat is None else {j.job_id: j for j in qstat},
        qstat_time=qstat_time if qstat_time is not None else (now if qstat is not None else None),
    )


def rows(ledger, specs, now, has_queue=True):
    return {r.name: r for r in job_rows(ledger, list(specs), ledger.last_sge, has_queue=has_queue, now=now)}


def test_a_running_job_with_its_worker_is_running_and_capacity():
    led = Ledger()
    submitted(led, ("job-0", "101"))
    fx = reconcile(led, obs(T0, ["job-0"], {"job-0": ("tcp://a:1",)}, [sj("101")]), policy())
    assert not fx.notices and not fx.drop and not fx.kick
    row = rows(led, ["job-0"], T0)["job-0"]
    assert row.state is JobState.RUNNING and row.workers == ("tcp://a:1",) and row.host == "n1"
    assert row.log_path == "/logs/job-0" and led.get("job-0").connected


def test_a_job_deleted_from_outside_is_gone_replaced_and_keeps_a_post_mortem():
    led = Ledger()
    submitted(led, ("job-0", "101"), ("job-1", "102"))
    both = {"job-0": ("tcp://a:1",), "job-1": ("tcp://b:1",)}
    reconcile(led, obs(T0, ["job-0", "job-1"], both, [sj("101"), sj("102")]), policy())
    logs = Logs(**{"job-1": "distributed.nanny - INFO - Start Nanny\nKilled\n"})
    fx = reconcile(led, obs(T0 + 2, ["job-0", "job-1"], {"job-0": ("tcp://a:1",)}, [sj("101")]), policy(logs))
    assert fx.drop == ["job-1"] and fx.ended == ["job-1"] and fx.kick and not fx.failed
    assert any("job 102 (job-1) left the queue without the console deleting it" in n for n in fx.notices)
    live = rows(led, ["job-0", "job-1"], T0 + 2)
    assert live["job-1"].state is JobState.GONE
    pm = led.get("job-1").postmortem
    assert pm.log_tail == ("distributed.nanny - INFO - Start Nanny", "Killed") and pm.log_found
    assert pm.verdict.startswith("left the queue without the console deleting it")
    assert "reading its accounting" in pm.verdict
    # once dask-jobqueue forgot it: still listed as gone for a while, then only among the ended
    assert rows(led, ["job-0"], T0 + 60)["job-1"].state is JobState.GONE
    assert "job-1" not in rows(led, ["job-0"], T0 + 2 + jobledger.GONE_KEEP + 1)
    (ended,) = ended_rows(led)
    assert ended.name == "job-1" and ended.state is JobState.GONE and ended.since == T0 + 2
    assert ended.reason == pm.verdict and ended.host == "n1"


def test_a_qstat_begun_before_qsub_answered_does_not_make_a_job_gone():
    led = Ledger()
    led.ensure("job-0", submitted_at=T0)
    led.note_job_ids({"job-0": "101"}, T0 + 5)  # a slow qsub: the id came at T0 + 5
    fx = reconcile(led, obs(T0 + 5.5, ["job-0"], qstat=[], qstat_time=T0 + 4), policy())
    assert not fx.drop and led.get("job-0").vanished_at is None
    fx = reconcile(led, obs(T0 + 8, ["job-0"], qstat=[], qstat_time=T0 + 7), policy())
    assert fx.drop == ["job-0"]


def test_no_qstat_this_time_changes_nothing():
    led = Ledger()
    submitted(led, ("job-0", "101"))
    reconcile(led, obs(T0, ["job-0"], qstat=[sj("101", "qw", host=None, started=None)]), policy())
    fx = reconcile(led, obs(T0 + 30, ["job-0"], qstat=None), policy())
    assert not fx.drop and rows(led, ["job-0"], T0 + 30)["job-0"].state is JobState.PENDING


def test_a_job_whose_worker_cannot_start_is_not_submitted_again_and_says_why():
    led = Ledger()
    submitted(led, ("job-0", "101"))
    reconcile(led, obs(T0, ["job-0"], qstat=[sj("101")]), policy())
    logs = Logs(**{"job-0": "Usage: dask_worker [OPTIONS]\nError: No such option: --no-such-option\n"})
    fx = reconcile(led, obs(T0 + 3, ["job-0"], qstat=[]), policy(logs))
    assert fx.failed == 1 and fx.drop == ["job-0"] and not fx.stop_adaptive
    assert any("ended before its worker started" in n and "not submitted again" in n for n in fx.notices)
    assert any("ended before any of their workers connected" in n for n in fx.notices)
    verdict = led.get("job-0").postmortem.verdict
    assert verdict == ("ended before its worker started: a bad worker argument: "
                       "Error: No such option: --no-such-option")


def test_adaptive_scaling_stops_when_jobs_fail_to_start():
    led = Ledger()
    submitted(led, ("job-0", "101"))
    reconcile(led, obs(T0, ["job-0"], qstat=[sj("101")]), policy(adaptive=True))
    fx = reconcile(led, obs(T0 + 3, ["job-0"], qstat=[]), policy(Logs(**{"job-0": "boom"}), adaptive=True))
    assert fx.stop_adaptive and not fx.kick


def test_jobs_that_ran_without_a_readable_output_count_towards_the_limit():
    led = Ledger()
    for i in range(FAILED_STARTS_LIMIT):
        name, job_id = f"job-{i}", str(100 + i)
        submitted(led, (name, job_id), at=T0 + 10 * i)
        reconcile(led, obs(T0 + 10 * i + 2, [name], qstat=[sj(job_id)]), policy())
        fx = reconcile(led, obs(T0 + 10 * i + 5, [name], qstat=[]), policy())  # no output file
        assert fx.failed == 0 and fx.drop == [name]
        assert fx.kick is (i + 1 < FAILED_STARTS_LIMIT)
    assert failed_starts_blocked(led)
    assert any(f"{FAILED_STARTS_LIMIT} job(s) in a row" in n for n in fx.notices)


def test_a_lost_worker_is_shown_at_once_and_stops_counting_after_the_grace():
    led = Ledger()
    submitted(led, ("job-0", "101"))
    reconcile(led, obs(T0, ["job-0"], {"job-0": ("tcp://a:1",)}, [sj("101", host="node2")]), policy())
    fx = reconcile(led, obs(T0 + 1, ["job-0"], {}, [sj("101", host="node2")]), policy())
    row = rows(led, ["job-0"], T0 + 1)["job-0"]
    assert row.state is JobState.NO_WORKER and "running in SGE on node2, no worker since" in row.reason
    assert not fx.kick and not led.get("job-0").uncounted
    # a scheduler that does not answer is not a lost worker
    reconcile(led, obs(T0 + 5, ["job-0"], None, [sj("101", host="node2")]), policy())
    assert rows(led, ["job-0"], T0 + 5)["job-0"].state is JobState.RUNNING
    fx = reconcile(led, obs(T0 + 17, ["job-0"], {}, [sj("101", host="node2")]), policy())
    assert led.get("job-0").uncounted and fx.kick and led.avoided(T0 + 17) == {"node2"}
    assert any("not counted any more; a replacement is submitted" in n for n in fx.notices)
    fx = reconcile(led, obs(T0 + 20, ["job-0"], {"job-0": ("tcp://a:2",)}, [sj("101", host="node2")]), policy())
    assert not led.get("job-0").uncounted and fx.kick
    assert any("its worker is back" in n for n in fx.notices)
    assert led.avoided(T0 + 20) == set()  # a worker of ours runs there: the node is alive


def test_a_job_sge_cannot_hand_to_its_node_has_no_worker_after_the_grace():
    led = Ledger()
    submitted(led, ("job-0", "101"))
    reconcile(led, obs(T0, ["job-0"], {}, [sj("101", "t", host="node3")]), policy())
    assert rows(led, ["job-0"], T0)["job-0"].state is JobState.RUNNING
    reconcile(led, obs(T0 + 16, ["job-0"], {}, [sj("101", "t", host="node3")]), policy())
    row = rows(led, ["job-0"], T0 + 16)["job-0"]
    assert row.state is JobState.NO_WORKER and "SGE has been sending it to node3" in row.reason


def test_a_job_that_runs_a_minute_without_a_worker_is_flagged_with_the_likely_cause():
    led = Ledger()
    submitted(led, ("job-0", "101"))
    logs = Logs(**{"job-0": "Start Nanny\nOSError: Timed out trying to connect to tls://10.1.2.3:8786 after 30 s\n"})
    fx = reconcile(led, obs(T0 + 30, ["job-0"], {}, [sj("101")]), policy(logs))
    assert not fx.notices and rows(led, ["job-0"], T0 + 30)["job-0"].reason == ""
    fx = reconcile(led, obs(T0 + STARTUP_GRACE + 1, ["job-0"], {}, [sj("101")]), policy(logs))
    reason = rows(led, ["job-0"], T0 + 61)["job-0"].reason
    assert reason.startswith("no worker after 60 s: the scheduler tls://10.1.2.3:8786 cannot be reached")
    assert [n for n in fx.notices if "job 101 (job-0) no worker after 60 s" in n]
    fx = reconcile(led, obs(T0 + 80, ["job-0"], {}, [sj("101")]), policy(logs))
    assert not fx.notices  # said once
    reconcile(led, obs(T0 + 90, ["job-0"], {"job-0": ("tcp://a:1",)}, [sj("101")]), policy(logs))
    assert rows(led, ["job-0"], T0 + 90)["job-0"].reason == ""


def test_jobs_the_console_deletes_end_once_out_of_the_queue_with_their_reason():
    led = Ledger()
    submitted(led, ("job-0", "101"), ("job-1", "102"))
    reconcile(led, obs(T0, ["job-0", "job-1"], {"job-0": ("a",), "job-1": ("b",)}, [sj("101"), sj("102")]), policy())
    led.get("job-1").retiring_since = T0 + 1
    assert rows(led, ["job-0", "job-1"], T0 + 1)["job-1"].state is JobState.RETIRING
    led.get("job-1").deleted = "scale-down"  # retired, its spec forgotten, qdel sent
    fx = reconcile(led, obs(T0 + 2, ["job-0"], {"job-0": ("a",)}, [sj("101"), sj("102", "dr")]), policy())
    assert not fx.ended and "job-1" not in rows(led, ["job-0"], T0 + 2)
    fx = reconcile(led, obs(T0 + 4, ["job-0"], {"job-0": ("a",)}, [sj("101")]), policy())
    assert fx.ended == ["job-1"] and not fx.drop and not fx.notices
    (ended,) = ended_rows(led)
    assert ended.state is JobState.ENDED and ended.reason == "deleted by the console (scale-down)"
    assert "job-1" not in rows(led, ["job-0"], T0 + 4)


def test_a_job_deleted_at_once_is_listed_until_it_leaves_qstat():
    led = Ledger()
    submitted(led, ("job-0", "101"))
    reconcile(led, obs(T0, ["job-0"], {"job-0": ("a",)}, [sj("101", host="node2")]), policy())
    rec = led.get("job-0")
    rec.deleted, rec.show_deleting = "its worker was gone", True
    reconcile(led, obs(T0 + 2, [], {}, [sj("101", "dr", host="node2")]), policy())
    (row,) = job_rows(led, [], led.last_sge, has_queue=True, now=T0 + 2)
    assert row.state is JobState.DELETING and row.raw_state == "dr" and row.workers == ()
    reconcile(led, obs(T0 + 4, [], {}, []), policy())
    assert job_rows(led, [], led.last_sge, has_queue=True, now=T0 + 4) == ()
    assert ended_rows(led)[0].reason == "deleted by the console (its worker was gone)"


def test_a_job_at_its_worker_lifetime_says_so():
    led = Ledger()
    submitted(led, ("job-0", "101"))
    pol = policy(lifetime=(30.0, 1.5))
    reconcile(led, obs(T0 + 1, ["job-0"], {"job-0": ("a",)}, [sj("101")]), pol)
    fx = reconcile(led, obs(T0 + 30, ["job-0"], {}, []), pol)
    assert any("job 101 (job-0) ended at its worker lifetime" in n for n in fx.notices)
    assert led.get("job-0").postmortem.verdict.startswith("ended at its worker lifetime")


def test_local_workers_are_running_once_connected_and_stopped_ones_end_at_once():
    led = Ledger()
    pol = policy(has_queue=False, log_path=lambda name, job_id: f"/logs/{name}")
    led.ensure("local-0", submitted_at=T0)
    reconcile(led, obs(T0, ["local-0"]), pol)
    assert rows(led, ["local-0"], T0, has_queue=False)["local-0"].state is JobState.SUBMITTING
    reconcile(led, obs(T0 + 1, ["local-0"], {"local-0": ("tcp://127.0.0.1:5",)}), pol)
    assert rows(led, ["local-0"], T0 + 1, has_queue=False)["local-0"].state is JobState.RUNNING
    led.get("local-0").deleted = "scale-down"
    fx = reconcile(led, obs(T0 + 2, []), replace(pol, read_tail=Logs(**{"local-0": "bye"})))
    assert fx.ended == ["local-0"]
    assert ended_rows(led)[0].reason == "stopped by the console (scale-down)"
    assert led.get("local-0").postmortem.accounting_note == ""  # no qacct for local workers


def test_ended_jobs_are_kept_bounded_newest_first():
    led = Ledger(ended_keep=3)
    for i in range(5):
        led.ensure(f"job-{i}", submitted_at=T0, deleted="scale-down", job_id=str(i))
    for i in range(5):  # one at a time, as they leave the queue
        reconcile(led, obs(T0 + i, [], qstat=[sj(str(j)) for j in range(i + 1, 5)]), policy())
    assert [r.name for r in ended_rows(led)] == ["job-4", "job-3", "job-2"]
    assert led.job_ids() == {"2", "3", "4"}


def test_a_refused_submission_leaves_no_record():
    led = Ledger()
    led.ensure("job-7")  # seen in the specs while qsub ran; qsub refused it
    reconcile(led, obs(T0, [], qstat=[]), policy())
    assert led.get("job-7") is None and not ended_rows(led)


def test_job_detail_of_an_error_job_offers_clear_and_delete():
    led = Ledger()
    submitted(led, ("job-0", "101"))
    why = "error: can't chdir to /nope: No such file or directory; Job is in error state"
    reconcile(led, obs(T0, ["job-0"], {}, [sj("101", "Eqw", host=None, started=None, reason=why)]), policy())
    assert rows(led, ["job-0"], T0)["job-0"].reason == why
    detail = job_detail(led.get("job-0"), has_queue=True)
    assert detail["can_clear"] and detail["can_delete"] and detail["sge_reason"] == why
    assert detail["postmortem"] is None and detail["raw_state"] == "Eqw"
