"""Host names for the IPs dask reports: the Workers panel shows nodes as the Jobs panel does."""

from __future__ import annotations

import threading

import pytest
from distributed import Client, LocalCluster

from naist_dask_tui.core.hostnames import HostNames, _lookup
from naist_dask_tui.core.probe import SchedulerProbe


def test_host_names_resolve_in_the_background_and_are_cached():
    asked, gate = [], threading.Event()

    def lookup(ip):
        asked.append(ip)
        gate.wait(10)
        return {"10.77.0.3": "node2"}.get(ip, ip)

    names = HostNames(lookup)
    assert names("10.77.0.3") == "10.77.0.3"  # not known yet: the IP, at once
    assert names("node1") == "node1"  # already a name: no lookup
    gate.set()
    names.wait()
    assert names("10.77.0.3") == "node2" and names("10.77.0.3") == "node2"
    assert asked == ["10.77.0.3"]


def test_reverse_lookup_gives_a_short_name():
    assert _lookup("127.0.0.1") == "localhost"  # /etc/hosts, first line
    assert "." not in _lookup("127.0.0.1")


@pytest.mark.timeout(120)
def test_workers_panel_rows_carry_host_names_not_ips():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
        probe = SchedulerProbe(client)
        probe.host_name = names = HostNames()
        first = probe.snapshot().workers[0]
        assert first.address.startswith("tcp://127.0.0.1:") and first.host == "127.0.0.1"
        names.wait()
        assert probe.snapshot(full=True).workers[0].host == "localhost"
