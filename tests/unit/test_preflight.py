"""Preflight checks: SGE commands, queue, parallel environment, interfaces, directories."""

from __future__ import annotations

import os
import shutil
import stat

import psutil
import pytest

from naist_dask_tui.core.preflight import Check, require_ready, run_checks
from naist_dask_tui.core.settings import Settings, SettingsError

needs_qconf = pytest.mark.skipif(
    not shutil.which("qconf"), reason="qconf not installed: no SGE on this host to check a queue against"
)


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


def nic() -> str:
    return sorted(psutil.net_if_addrs())[0]


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_check_lines():
    assert Check("qsub", True, "qsub found: /usr/bin/qsub").line() == "ok    qsub found: /usr/bin/qsub"
    assert Check("queue", False, "queue x.q does not exist").line() == "FAIL  queue x.q does not exist"
    assert Check("nic", False, "ib0 missing", severity="warning").line() == "warn  ib0 missing"
    assert not Check("nic", False, "", severity="warning").failed


def test_no_sge_commands(here):
    checks = by_name(run_checks(Settings(local_directory=str(here)), which=lambda name: None))
    qsub = checks["qsub"]
    assert not qsub.ok and qsub.failed
    assert qsub.detail.startswith("qsub not found on PATH: not an SGE login node? use --backend local")
    assert not checks["qstat"].ok and not checks["qdel"].ok
    assert "queue" not in checks  # nothing to ask without SGE


def test_require_ready_follows_the_resolved_backend(here):
    # auto without qsub starts a LocalCluster: missing qsub must not block it.
    assert require_ready(Settings(local_directory=str(here)), which=lambda name: None)
    with pytest.raises(SettingsError) as e:
        require_ready(Settings(backend="sge", local_directory=str(here)), which=lambda name: None)
    assert e.value.field == "backend" and "qsub not found" in str(e.value)


def test_local_backend_directories(here):
    missing = str(here / "nowhere")
    checks = by_name(run_checks(Settings(backend="local", local_directory=missing)))
    assert set(checks) == {"local_directory", "log_directory", "memory"}
    assert checks["local_directory"].failed and missing in checks["local_directory"].detail
    with pytest.raises(SettingsError, match="^local_directory: local directory .* does not exist"):
        require_ready(Settings(backend="local", local_directory=missing))


def test_log_directory_not_creatable(here):
    blocker = here / "file"
    blocker.write_text("")
    s = Settings(backend="local", local_directory=str(here), log_directory=str(blocker / "logs"))
    check = by_name(run_checks(s))["log_directory"]
    assert check.failed and "cannot be created" in check.detail and "--log-directory" in check.detail


def test_memory_that_does_not_parse():
    check = by_name(run_checks(Settings(backend="local", memory="lots", local_directory="/")))["memory"]
    assert check.failed and "e.g. 250GB" in check.detail


def test_attach_checks_only_that_the_scheduler_answers():
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        checks = run_checks(Settings(attach=f"tcp://127.0.0.1:{port}"))
        assert [c.name for c in checks] == ["attach"] and checks[0].ok
    closed = run_checks(Settings(attach=f"tcp://127.0.0.1:{port}"))[0]
    assert closed.failed and "does not answer" in closed.detail and "--attach" in closed.detail


@pytest.mark.skipif(not shutil.which("qsub"), reason="qsub not installed: no SGE on this host")
def test_interfaces(here):
    ok = by_name(run_checks(Settings(interface=nic(), scheduler_interface=nic(), local_directory=str(here))))
    assert ok["interface"].ok and ok["scheduler_interface"].ok
    bad = by_name(run_checks(Settings(interface="nosuchnic0", scheduler_interface="nosuchnic1",
                                      local_directory=str(here))))
    assert bad["scheduler_interface"].failed
    assert f"existing: {', '.join(sorted(psutil.net_if_addrs()))}" in bad["scheduler_interface"].detail
    # The workers' NIC may exist on the compute nodes only (the lab's ib0): never a refusal
    # here; each job checks it on its node.
    assert not bad["interface"].failed and not bad["interface"].ok
    assert bad["interface"].line() == (
        "note  worker interface nosuchnic0 is not on this host; each job checks it on its "
        "compute node and the console says so if it is missing there"
    )
    lab = Settings(backend="sge", interface="nosuchnic0", scheduler_interface=nic(), local_directory=str(here))
    require_ready(lab)  # starts
    skipped = by_name(run_checks(Settings(scheduler_interface="nosuchnic1", skip_interface_check=True,
                                          local_directory=str(here))))
    assert "scheduler_interface" not in skipped and skipped["interfaces"].ok


@needs_qconf
def test_real_qconf_queue_and_pe(here):
    queues = os.popen("qconf -sql").read().split()
    pes = os.popen("qconf -spl").read().split()
    assert queues, "qconf -sql listed no queue"
    s = Settings(queue=queues[0], job_extra_directives=(f"-pe {pes[0]} 24",) if pes else (),
                 skip_interface_check=True, local_directory=str(here))
    checks = by_name(run_checks(s))
    assert checks["queue"].ok, checks["queue"].detail
    if pes:
        assert checks[f"pe {pes[0]}"].ok

    bad = by_name(run_checks(Settings(queue="no_such.q", job_extra_directives=("-pe no_such_pe 4",),
                                      skip_interface_check=True, local_directory=str(here))))
    assert bad["queue"].failed
    assert bad["queue"].detail == (
        f"queue no_such.q does not exist (from qconf -sql); existing queues: {', '.join(queues)}; "
        "use --queue NAME"
    )
    assert bad["pe no_such_pe"].failed and "qconf -spl" in bad["pe no_such_pe"].detail


@pytest.mark.skipif(not shutil.which("qstat"), reason="qstat not installed: no SGE on this host")
def test_queue_from_qstat_when_qconf_is_missing(here):
    which = lambda name: None if name == "qconf" else shutil.which(name)  # noqa: E731
    checks = by_name(run_checks(Settings(queue="no_such.q", skip_interface_check=True,
                                         local_directory=str(here)), which=which))
    assert checks["queue"].failed and "(from qstat -g c)" in checks["queue"].detail
    assert checks["pe smp"].severity == "warning" and "qconf not found" in checks["pe smp"].detail


def _fake_command(bin_dir, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_sge_errors_keep_sges_own_words(here, monkeypatch):
    bin_dir = here / "bin"
    bin_dir.mkdir()
    for name in ("qsub", "qstat", "qdel"):
        _fake_command(bin_dir, name, "exit 0\n")
    _fake_command(bin_dir, "qconf", 'echo "error: commlib error: got select error (Connection refused)" >&2\n'
                                    "exit 1\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    which = lambda name: shutil.which(name, path=str(bin_dir))  # noqa: E731
    checks = by_name(run_checks(Settings(skip_interface_check=True, local_directory=str(here)), which=which))
    assert checks["queue"].failed
    assert checks["queue"].detail == (
        "queue grid_short.q could not be checked: `qconf -sql` failed: "
        "error: commlib error: got select error (Connection refused)"
    )
    with pytest.raises(SettingsError, match=r"^queue: queue grid_short.q could not be checked.*Connection refused"):
        require_ready(Settings(backend="sge", skip_interface_check=True, local_directory=str(here)), which=which)
