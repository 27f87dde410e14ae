"""What is checked where the workers run, and how the console reads the answer back.

The workers' network interface (``ib0`` in the lab) exists on the compute nodes, not on the
login node, so it cannot be checked before the start. Each job checks it first thing, on its
node: when it is missing, the job writes one line to its SGE output file and ends before a
worker starts. The console reads that line from the file (the log directory is shared with the
nodes) when the job leaves the queue, says it in words, and does not submit the job again.
"""

from __future__ import annotations

import re
import shlex

MARK = "naist-dask-tui: worker interface"
_MISSING = re.compile(
    re.escape(MARK) + r" (?P<nic>\S+) does not exist on (?P<host>\S+); it has: (?P<has>[^\n]*)"
)


def interface_prologue(interface: str) -> str:
    """One shell line for the job script: end the job with a clear message when ``interface``
    does not exist on the node that runs it (``/sys/class/net`` is the node's own network
    namespace)."""
    nic = shlex.quote(interface)
    # inside the echo's double quotes: a plain name as it is, anything else closes and reopens
    said = nic if nic == interface else f'"{nic}"'
    return (
        f"[ -e /sys/class/net/{nic} ] || {{ echo \"{MARK} {said} does not exist on $(hostname); "
        f"it has: $(ls /sys/class/net | tr '\\n' ' ')\" >&2; exit 3; }}"
    )


# What a worker's output says when it cannot start or cannot reach the scheduler, most
# specific first: (pattern, what it most likely means). ``{0}`` is the pattern's first group.
_CAUSES = (
    (re.compile(r"""['"]?([\w.:-]+)['"]? is not a valid network interface"""),
     "network interface {0} does not exist on the node: use --interface with one it has"),
    (re.compile(r"(\S*python[\w.]*)\S*: (?:No such file or directory|command not found)"),
     "the Python interpreter {0} is not there on the node (a virtualenv on a disk the nodes "
     "do not share?)"),
    (re.compile(r"(?:SSL|TLS|[Cc]ertificate)\S*(?:Error|error| verify failed)[^\n]*"),
     "a TLS or certificate error: {0}"),
    (re.compile(r"(?:ModuleNotFoundError|ImportError): ([^\n]+)"),
     "the node's Python cannot import what the worker needs ({0}): another environment, or "
     "mismatched Python/dask/distributed versions?"),
    (re.compile(r"([^\n]*(?:Mismatched versions|version mismatch|unsupported pickle protocol)[^\n]*)"),
     "mismatched Python/dask/distributed versions: {0}"),
    (re.compile(r"(?:Timed out trying to connect to|Failed to connect to|Could not connect to|"
                r"Timed out during handshake while connecting to)\s+'?([a-z]+://[^\s':]+:\d+)"),
     "the scheduler {0} cannot be reached from the node (a firewall, or a scheduler interface "
     "the nodes cannot reach: --scheduler-interface?)"),
    (re.compile(r"(Error: No such option: \S+|Error: Invalid value[^\n]*|Error: Got unexpected[^\n]*)"),
     "a bad worker argument: {0}"),
)


def likely_cause(log_text: str) -> str | None:
    """The most likely reason a worker does not start or connect, from its output; None
    when the output says nothing recognisable."""
    m = _MISSING.search(log_text)
    if m:
        has = ", ".join(m.group("has").split()) or "none"
        return (
            f"worker interface {m.group('nic')} does not exist on {m.group('host')} "
            f"(it has: {has}); use --interface with one of those"
        )
    for pattern, meaning in _CAUSES:
        found = list(pattern.finditer(log_text))
        if found:
            last = found[-1]
            return meaning.format((last.group(1) if last.groups() else last.group(0)).strip()[:200])
    return None


def start_failure(log_text: str) -> str:
    """Why a job ended before its worker connected, in words, from the end of its output."""
    m = _MISSING.search(log_text)
    if m:
        return likely_cause(log_text) or ""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    if not lines:
        return "its output file is empty"
    return "its output ends with: " + " | ".join(lines[-3:])[-300:]


def startup_diagnosis(log_text: str | None, waited: float, scheduler: str | None = None) -> str:
    """Why the workers of a job SGE runs have not connected after ``waited`` seconds
    (``scheduler``: the address they connect to)."""
    head = f"no worker after {waited:.0f} s"
    if log_text is None:
        return f"{head}: no output file yet (is the log directory shared with the nodes?)"
    cause = likely_cause(log_text)
    if cause:
        return f"{head}: {cause}"
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    said = f"its output ends with: {lines[-1][-160:]}" if lines else "its output says nothing yet"
    if scheduler:
        # a nanny says nothing until it reaches the scheduler (or gives up, after distributed's
        # connect timeout): silence is most often a scheduler the node cannot reach
        return (f"{head}; {said}; is the scheduler {scheduler} unreachable from the node? (a "
                "firewall, or a scheduler interface the nodes cannot reach: --scheduler-interface)")
    return f"{head}; {said}"


def telling_line(lines: list[str] | tuple[str, ...]) -> str | None:
    """The last line of a worker's output that one of the known causes matched."""
    for line in reversed(lines):
        if _MISSING.search(line) or any(p.search(line) for p, _ in _CAUSES):
            return line.strip()[:200]
    return None
