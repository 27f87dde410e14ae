"""The lab's network for the tests: compute nodes node1, node2 that are not the login node.

``ci/lab-network.sh up`` builds it (see its header): this host has bond1 and no ib0, each node
is a network namespace with ib0 and its own sge_execd, in queue grid_short.q. Only jobs that ask
for ``-l lab_node=TRUE`` run on a node, so the lab tests add that to the shipped ``naist``
profile, shrunk in size only; nothing else of the profile changes (queue, ib0, bond1,
/var/tmp, TLS, lifetime).

Where the network is not up the lab tests skip, saying so; CI sets NAIST_DASK_TUI_REQUIRE_LAB=1,
and there a missing lab network is a failure.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import psutil

from naist_dask_tui.core import sge

SCRIPT = Path(__file__).resolve().parents[2] / "ci" / "lab-network.sh"
QUEUE = "grid_short.q"
NODES = ("node1", "node2")
REQUIRED = os.environ.get("NAIST_DASK_TUI_REQUIRE_LAB") == "1"
# The shipped profile, shrunk in size (cores, memory, the PE's slots), plus the one request that
# keeps lab jobs and one-host jobs apart on this machine's grid.
SHRINK = ["--cores", "1", "--memory", "1GB", "--job-extra-directive", "-pe smp 1"]
ON_NODES = "lab_node=TRUE"


def why_not_up() -> str | None:
    """None when node1 and node2 are up and this host has bond1 (and no ib0); else why not."""
    if not sge.available():
        return "no SGE on this machine"
    if os.geteuid() != 0:
        return "the lab network tests kill and restart a node's execd: they run as root"
    nics = psutil.net_if_addrs()
    if "bond1" not in nics:
        return f"no lab network (no bond1 here): bring it up with `bash {SCRIPT.relative_to(SCRIPT.parents[1])} up`"
    if "ib0" in nics:
        return "this host has an ib0: it cannot stand for the lab's login node"
    done = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=60)
    up = {line.split()[0] for line in done.stdout.splitlines() if " up " in f"{line} "}
    missing = [n for n in NODES if n not in up]
    if missing:
        return f"lab nodes not up: {', '.join(missing)} ({done.stdout.strip() or done.stderr.strip()})"
    return None


def script(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"lab-network.sh {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stderr


def qconf(*args: str) -> None:
    sge.run(["qconf", *args])


@contextlib.contextmanager
def only(node: str):
    """While active, lab jobs can start on ``node`` alone (the other nodes' queue instances are
    disabled; their running jobs go on). Lab jobs only: one-host jobs never run on a node."""
    others = [f"{QUEUE}@{n}" for n in NODES if n != node]
    sge.run(["qmod", "-d", *others])
    try:
        yield
    finally:
        sge.run(["qmod", "-e", *others])


@contextlib.contextmanager
def one_slot_each():
    """While active, each node takes one lab job: two jobs submitted at once land on both."""
    before = {n: _slots(n) for n in NODES}
    for n in NODES:
        qconf("-mattr", "queue", "slots", "1", f"{QUEUE}@{n}")
    try:
        yield
    finally:
        for n, slots in before.items():
            qconf("-mattr", "queue", "slots", str(slots), f"{QUEUE}@{n}")


def _slots(node: str) -> int:
    out = sge.run(["qconf", "-sq", f"{QUEUE}@{node}"])
    return int(next(line.split()[1] for line in out.splitlines() if line.startswith("slots")))


def naist_settings(tmp_path, **over):
    """The shipped naist profile as the lab tests start it (in-process)."""
    from naist_dask_tui.core.settings import load_settings

    values = dict(backend="sge", jobs=0, cores=1, memory="1GB", job_extra_directives=["-pe smp 1"],
                  resource_spec=ON_NODES, log_directory=str(tmp_path / "logs"))  # fmt: skip
    values.update(over)
    return load_settings(values, env={}, profile="naist")


def headless(tmp_path, *extra: str) -> tuple[subprocess.Popen, list[str]]:
    """``naist-dask-tui --headless`` with the shipped profile on the lab network."""
    cmd = [sys.executable, "-m", "naist_dask_tui", "--headless", "--profile", "naist", *SHRINK,
           "--resource-spec", ON_NODES, "--log-directory", str(tmp_path / "logs"),
           "--refresh-interval", "0.5", *extra]  # fmt: skip
    from .conftest import spawn

    return spawn(cmd, tmp_path)
