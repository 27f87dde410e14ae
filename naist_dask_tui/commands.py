"""The commands for your running clusters: ``ls``, ``attach``, ``stop``, ``env``.

``naist-dask-tui ls`` lists them from what their keepers wrote on disk (no connection made);
``attach`` opens the screen on one; ``stop`` has its keeper delete every job and exit;
``env`` prints the shell exports that make an unchanged ``distributed.Client()`` connect.
"""

from __future__ import annotations

import argparse
import sys

from naist_dask_tui.core.settings import Settings, load_settings

PROG = "naist-dask-tui"


COMMANDS_HELP = f"""\
commands (instead of starting a cluster):
  {PROG} ls                  list your clusters on this host
  {PROG} attach [NAME]       open the screen on a running cluster
  {PROG} stop [NAME | --all] stop a cluster: its keeper deletes every job and exits
  {PROG} env [NAME]          print shell exports that make distributed.Client() connect to it
"""


def build_command_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Your running clusters.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("ls", help="list your clusters on this host")
    attach = sub.add_parser("attach", help="open the screen on a running cluster")
    attach.add_argument("name", nargs="?", help="which cluster (see ls); default: the only one")
    attach.add_argument("--refresh-interval", metavar="SECONDS", help="how often the screen polls")
    stop = sub.add_parser("stop", help="stop a cluster and delete its jobs")
    stop.add_argument("name", nargs="?", help="which cluster (see ls); default: the only one")
    stop.add_argument("--all", action="store_true", help="stop every cluster of yours on this host")
    env = sub.add_parser("env", help="shell exports for distributed.Client()")
    env.add_argument("name", nargs="?", help="which cluster (see ls); default: the only one")
    return p


COMMANDS = ("ls", "attach", "stop", "env")



# --------------------------------------------------------------------------------------------
# Running clusters: ls, attach, stop, env


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def cluster_lines(records, now: float | None = None) -> list[str]:
    """The ``ls`` table."""
    import time as _time

    now = _time.time() if now is None else now
    header = ("NAME", "BACKEND", "ADDRESS", "JOBS r/p", "WORKERS", "SCREENS", "IDLE", "STARTED")
    rows = [header]
    for r in records:
        st = r.status or {}
        jobs = f"{st.get('jobs_running', '?')}/{st.get('jobs_pending', '?')}"
        if st.get("adaptive"):
            jobs += f" (adapt {st['adaptive'][0]}-{st['adaptive'][1]})"
        workers = st.get("workers")
        idle_since = st.get("idle_since")
        if r.state != "running":
            idle = r.state
        elif idle_since:
            idle = _ago(now - idle_since)
            idle += f" of {_ago(r.idle_timeout)}" if r.idle_timeout else " (never stops)"
        else:
            idle = "busy" if r.idle_timeout else "busy (never stops)"
        started = _time.strftime("%m-%d %H:%M", _time.localtime(r.started)) + f" ({_ago(now - r.started)} ago)"
        rows.append((r.name, r.backend, r.address or "-", jobs, "?" if workers is None else str(workers),
                     str(st.get("screens", 0)), idle, started))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _ls() -> int:
    from naist_dask_tui.core import registry

    records = registry.clusters()
    if not records:
        print("no cluster of yours is running on this host")
        return 0
    print("\n".join(cluster_lines(records)))
    return 0


def choose(records, interactive: bool):
    """One of several running clusters: asked at the terminal, or an error naming them."""
    from naist_dask_tui.core.registry import RegistryError

    names = ", ".join(r.name for r in records)
    if not interactive:
        raise RegistryError(f"several clusters are running ({names}): `{PROG} attach NAME` picks one")
    print("Your clusters on this host:", file=sys.stderr)
    for i, line in enumerate(cluster_lines(records)):
        print(f"  {'  ' if i == 0 else f'{i})'} {line}", file=sys.stderr)
    while True:
        try:
            answer = input(f"Attach to which (1-{len(records)}, or a name; Enter cancels)? ").strip()
        except EOFError:
            answer = ""
        if not answer:
            raise KeyboardInterrupt
        if answer.isdigit() and 1 <= int(answer) <= len(records):
            return records[int(answer) - 1]
        for r in records:
            if r.name == answer:
                return r
        print(f"  {answer!r} is not one of them", file=sys.stderr)


def _screen_settings(refresh_interval: str | None = None) -> Settings:
    """Settings for a screen attaching to a running cluster: only the screen's own ones count."""
    overrides = {"refresh_interval": refresh_interval} if refresh_interval else {}
    # dask's jobqueue config describes clusters, not screens: not read (nor dask imported)
    return load_settings(overrides, dask_config={})


def _attach(name: str | None, settings: Settings | None = None) -> int:
    from naist_dask_tui.console import run_attached
    from naist_dask_tui.core import registry

    if name:
        record = registry.find(name)
    else:
        records = registry.clusters()
        if not records:
            print(f"{PROG}: no cluster of yours is running on this host; start one with `{PROG}`",
                  file=sys.stderr)
            return 1
        record = records[0] if len(records) == 1 else choose(records, sys.stdin.isatty())
    from naist_dask_tui.core.remote import RemoteController

    return run_attached(settings or _screen_settings(), RemoteController(record))


def _stop(name: str | None, all_: bool) -> int:
    from naist_dask_tui.core import registry

    records = registry.clusters()
    if all_:
        targets = records
    elif name:
        targets = [registry.find(name)]
    elif len(records) == 1:
        targets = records
    elif not records:
        print("no cluster of yours is running on this host")
        return 0
    else:
        names = ", ".join(r.name for r in records)
        print(f"{PROG}: error: several clusters are running ({names}): "
              f"`{PROG} stop NAME` or `{PROG} stop --all`", file=sys.stderr)
        return 2
    if not targets:
        print("no cluster of yours is running on this host")
    for record in targets:
        computing = (record.status or {}).get("computing")
        if computing:
            print(f"{record.name}: cancelling its running computation (run {computing}) first", flush=True)
        print(f"stopping {record.name} ({record.backend}, keeper pid {record.pid}): deleting its jobs…",
              flush=True)
        print(registry.stop(record))
    return 0


def _env(name: str | None) -> int:
    from naist_dask_tui.core.remote import env_lines, pick

    record = pick(name)
    print(f"# cluster {record.name} ({record.backend}); use: eval \"$({PROG} env {record.name})\"")
    print("\n".join(env_lines(record)))
    return 0


def run_command(argv: list[str]) -> int:
    parser = build_command_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if args.command == "ls":
        return _ls()
    if args.command == "attach":
        return _attach(args.name, _screen_settings(args.refresh_interval))
    if args.command == "stop":
        return _stop(args.name, args.all)
    return _env(args.name)
