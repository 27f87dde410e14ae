"""TLS on a real SGE cluster, and the lab's computation run from the compute console on it."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from distributed import Client

from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.compute import ComputeSession
from naist_dask_tui.core.monitor import Monitor

from .conftest import _ours, wait_for

pytestmark = [pytest.mark.sge, pytest.mark.timeout(300)]


def test_tls_scheduler_refuses_strangers_and_keeps_credentials_private(sge_settings):
    s = sge_settings(jobs=1)
    assert s.tls, "TLS must be on by default on SGE"
    with ClusterController(s) as c:
        m = Monitor(c)
        wait_for(lambda: (snap := m.poll()).cluster and snap.cluster.n_workers == 1, 90, what="1 worker")
        address = c.scheduler_address
        assert address.startswith("tls://")
        # The credential files the job scripts point to: in a 0700 directory, mode 0600.
        tls_dir = s.tls_dir
        assert stat.S_IMODE(os.stat(tls_dir).st_mode) == 0o700
        files = os.listdir(tls_dir)
        assert {f.split(".")[3] for f in files} >= {"ca_file", "cert", "key"}
        for f in files:
            assert stat.S_IMODE(os.stat(os.path.join(tls_dir, f)).st_mode) == 0o600, f
        # A client without the credentials gets nowhere: neither over plain TCP nor with TLS
        # certificates of its own (another CA): the handshake is refused.
        from distributed.security import Security

        for attempt, security in (
            (address.replace("tls://", "tcp://"), None),
            (address, Security.temporary()),
        ):
            with pytest.raises(OSError):  # "Timed out trying to connect"
                Client(attempt, security=security, timeout="3s", set_as_default=False)
    assert not os.path.exists(tls_dir), "the credentials outlived the console"


def test_lab_computation_from_the_console_on_two_sge_jobs(sge_settings):
    with ClusterController(sge_settings(jobs=2)) as c:
        m = Monitor(c)
        wait_for(lambda: (snap := m.poll()).cluster and snap.cluster.n_workers == 2, 90, what="2 workers")
        assert len(_ours()) == 2
        session = ComputeSession(c.client, c.cluster)
        code = (
            "rng = da.random.default_rng(2024)\n"
            "x = rng.random((2000, 2000, 10), chunks=(500, 500, 5))\n"
            "y = rng.random((2000, 2000, 10), chunks=(500, 500, 5))\n"
            "(da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))"
        )
        result = session.run(code)
        assert result.ok, result.error
        assert result.task_count > 0
        z = session.namespace["_"]
        x = session.namespace["x"].compute()
        y = session.namespace["y"].compute()
        np.testing.assert_allclose(z, (np.arcsin(x) + np.arccos(y)).sum(axis=(1, 2)))
        assert z.shape == (2000,)
        progress = session.progress()
        assert progress is not None and progress.done == progress.total > 0
