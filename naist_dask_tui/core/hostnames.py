"""Host names for the addresses dask reports.

The scheduler knows a worker's host by IP (``10.77.0.3``); the Jobs panel, from ``qstat``, by
name (``node2``). The Workers panel shows names too: each IP is reverse-resolved once, in a
background thread (a slow DNS must never hold up a refresh), and cached; until the answer is in,
the IP is shown. A name is shortened to its first label (``node2.cluster.local`` -> ``node2``),
as SGE shows hosts.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

MAX_ENTRIES = 65536  # far more hosts than any cluster; a bound all the same


def _lookup(ip: str) -> str:
    try:
        name = socket.gethostbyaddr(ip)[0]
    except (OSError, UnicodeError):
        return ip
    if not name:
        return ip
    try:
        ipaddress.ip_address(name)
        return name  # resolved to an address: nothing better to show
    except ValueError:
        return name.split(".", 1)[0] or name


class HostNames:
    """``names(ip) -> str``: the cached short name, or the IP until it is known."""

    def __init__(self, lookup=_lookup) -> None:
        self._lookup = lookup
        self._names: dict[str, str] = {}
        self._asked: set[str] = set()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __call__(self, host: str) -> str:
        name = self._names.get(host)
        if name is not None:
            return name
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return host  # already a name
        with self._lock:
            if host not in self._asked and len(self._asked) < MAX_ENTRIES:
                self._asked.add(host)
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(2, thread_name_prefix="ndtui-dns")
                self._pool.submit(self._resolve, host)
        return host

    def _resolve(self, host: str) -> None:
        self._names[host] = self._lookup(host)

    def wait(self, timeout: float = 10.0) -> None:
        """Until the lookups asked so far have answered (tests)."""
        import time

        end = time.time() + timeout
        while time.time() < end and any(h not in self._names for h in list(self._asked)):
            time.sleep(0.01)


#: One cache for the process: every probe (and reconnect) shares it.
host_names = HostNames()
