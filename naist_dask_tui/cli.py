"""The command line: flags -> Settings, then a one-shot action or the console.

Nothing heavy is imported at module level: ``--version`` and ``--help`` stay instant, and the
Textual app is imported only when the console actually runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from naist_dask_tui import __version__
from naist_dask_tui.commands import COMMANDS, COMMANDS_HELP, choose, run_command
from naist_dask_tui.core.errors import ControllerError
from naist_dask_tui.core.settings import SETTINGS, Settings, SettingsError, load_settings
from naist_dask_tui.core.settings_fields import add_flags, overrides
from naist_dask_tui.core.sge import SgeError
from naist_dask_tui.core.start_check import Declined, confirm_start

PROG = "naist-dask-tui"

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="A terminal console for Dask on Son of Grid Engine: start, scale, watch, compute.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=COMMANDS_HELP + "\nSettings are layered: built-in profile < ~/.config/dask/jobqueue.yaml (jobqueue.sge) "
        "< ~/.config/naist-dask-tui/config.toml < NAIST_DASK_TUI_<FIELD> variables < these flags.",
        # Our own validation gives better messages than argparse's type= errors.
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    p.add_argument("--config", metavar="PATH", help="TOML config file (default: XDG config dir)")
    add_flags(p, SETTINGS)  # one flag per setting, from its declaration
    p.add_argument(
        "--allow-pending",
        action="store_true",
        help="submit a job count above what the queue runs at once without asking (the rest pends)",
    )
    actions = p.add_mutually_exclusive_group()
    actions.add_argument(
        "--print-job-script", action="store_true", help="print the SGE job script and exit; submits nothing"
    )
    actions.add_argument("--check", action="store_true", help="check that this host can start the cluster")
    actions.add_argument("--show-settings", action="store_true", help="print each setting and its source")
    actions.add_argument(
        "--cleanup", action="store_true", help="delete leftover jobs of consoles that are gone, and exit"
    )
    actions.add_argument(
        "--headless", action="store_true",
        help="run the cluster in the foreground without the screen, one status line a refresh; "
        "SIGTERM, SIGHUP or Ctrl+C stop it (screens and scripts can attach meanwhile)",
    )
    p.add_argument("--new", action="store_true",
                   help="start another cluster even if one of yours is running (default: attach to it)")
    p.add_argument("--name", metavar="NAME",
                   help="the new cluster's name (default: the profile's name, then NAME-2, NAME-3...)")
    return p


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The Settings fields the command line sets (only flags that were given)."""
    return overrides(args, SETTINGS)


def _print_job_script(settings: Settings) -> int:
    from naist_dask_tui.core.jobscript import job_script

    backend = settings.resolved_backend()
    if backend != "sge":
        print(f"# note: this run would use the {backend} backend; this is the script SGE would get.",
              file=sys.stderr)
    print(job_script(settings), end="")
    return 0


def _check(settings: Settings) -> int:
    from naist_dask_tui.core.preflight import run_checks

    checks = run_checks(settings)
    for check in checks:
        print(check.line())
    return 1 if any(check.failed for check in checks) else 0


def _checked_keys(settings: Settings) -> Settings:
    """The config file's [keys] table, checked against the console's binding ids."""
    if not settings.keys:
        return settings
    from dataclasses import replace

    from naist_dask_tui.keymap import validate

    return replace(settings, keys=validate(settings.keys, f"{settings.config_path} [keys]"))


def _show_settings(settings: Settings) -> int:
    """Every setting and its source, as the resolved backend will use them."""
    from naist_dask_tui.core import limits

    backend = settings.resolved_backend()
    if backend == "local":
        local, lim = limits.local_view(settings)
        print("\n".join(local.describe(backend="local")))
    else:
        print("\n".join(settings.describe()))
        lim = limits.resolve(settings, "sge") if backend == "sge" else None
    print(f"{'backend (resolved)':<21} {backend}")
    if lim is not None:
        unit = "jobs" if backend == "sge" else "workers"
        print(f"{'max_jobs (in force)':<21} {f'{lim.max_jobs} {unit}':<28} {lim.origin}")
    return 0


def _describe(item) -> str:
    return f"job {item.job.job_id} ({item.job.name}, {item.job.state.value})"


def _cleanup() -> int:
    """Delete the jobs of consoles that are gone (killed with SIGKILL, a crashed node)."""
    from naist_dask_tui.core import sge

    try:
        leftovers = sge.find_leftovers()
        for item in leftovers:
            if item.dead:
                print(f"deleting {_describe(item)}: console pid {item.pid} on {item.host} is gone")
            else:
                print(f"keeping  {_describe(item)}: console pid {item.pid} on {item.host} may still run")
        dead = [item.job.job_id for item in leftovers if item.dead]
        if not dead:
            print("no leftover jobs of consoles that are gone")
            return 0
        for line in sge.qdel(dead):
            print(line)
        return 0
    except (sge.SgeError, OSError) as e:
        print(f"{PROG}: error: cleanup failed: {e}", file=sys.stderr)
        return 1


def _offer_cleanup(settings: Settings, interactive: bool) -> None:
    """At start: find jobs left by a console that was killed, and offer to delete them."""
    from naist_dask_tui.core import sge

    if settings.resolved_backend() != "sge" or not sge.available():
        return
    try:
        dead = [item for item in sge.find_leftovers() if item.dead]
    except sge.SgeError as e:
        print(f"{PROG}: warning: could not look for leftover jobs: {e}", file=sys.stderr)
        return
    if not dead:
        return
    print(f"{len(dead)} job(s) left behind by a console that is gone:", file=sys.stderr)
    for item in dead:
        print(f"  {_describe(item)}, submitted by pid {item.pid}", file=sys.stderr)
    if not interactive:
        print(f"  delete them with: {PROG} --cleanup", file=sys.stderr)
        return
    try:
        answer = input("Delete them now? [Y/n] ").strip().lower()
    except EOFError:
        answer = "n"
    if answer in ("", "y", "yes"):
        for line in sge.qdel([item.job.job_id for item in dead]):
            print(f"  {line}", file=sys.stderr)
    else:
        print(f"  kept; delete them later with: {PROG} --cleanup", file=sys.stderr)


# Flags that only matter to a new cluster (a screen attaching to a running one ignores them).
_SCREEN_ONLY = {"refresh_interval"}


def _start_or_attach(args: argparse.Namespace, settings: Settings) -> int:
    """No cluster of yours here: start one in a keeper and attach. One: attach to it. Several:
    ask which. ``--new`` always starts another."""
    from naist_dask_tui.console import run_attached
    from naist_dask_tui.core import registry
    from naist_dask_tui.core.launch import launch_keeper
    from naist_dask_tui.core.remote import RemoteController

    new = getattr(args, "new", False)
    name = getattr(args, "name", None)
    records = [] if new else registry.clusters()
    if name and not new:
        records = [r for r in records if r.name == name]
    if records:
        record = records[0] if len(records) == 1 else choose(records, sys.stdin.isatty())
        ignored = sorted(k for k in cli_overrides(args) if k not in _SCREEN_ONLY)
        if ignored:
            flags = ", ".join(dict.fromkeys(SETTINGS[k].flag_name(k) for k in ignored))  # as typed
            note = (f"cluster {record.name} was already running: attached to it, so {flags} "
                    "did not apply (--new starts another cluster with them)")
        else:
            note = (f"attached to your running cluster {record.name} ({record.backend}); "
                    "--new starts another")
        print(f"{PROG}: {note}", file=sys.stderr)
        return run_attached(settings, RemoteController(record), notes=[note])
    interactive = sys.stdin.isatty()
    _offer_cleanup(settings, interactive=interactive)
    settings = confirm_start(
        settings, interactive=interactive, allow_pending=getattr(args, "allow_pending", False)
    )
    for note in settings.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    if settings.resolved_backend() == "local":
        # what resolved_for_local() will change, said where the user sees it: in the screen
        notes = [f"note: {n}" for n in _local_notes(settings)]
    else:
        notes = []
    # The usual mistakes (an unknown queue or PE, a missing interface, no qsub) were found by
    # confirm_start, in one line and before anything starts; the keeper checks again.
    # The screen paints at once and shows the cluster starting; its start error, if any, is
    # printed when the screen closes.
    launch = launch_keeper(settings, name=name)
    return run_attached(settings, RemoteController(launch=launch), notes=notes)


def _local_notes(settings: Settings) -> tuple[str, ...]:
    import os

    import psutil

    return settings.resolved_for_local(os.cpu_count() or 1, psutil.virtual_memory().total).notes


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in COMMANDS:
            return run_command(argv)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        return _report(e)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors: argparse already printed
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        if getattr(args, "cleanup", False):
            return _cleanup()
        settings = load_settings(
            cli_overrides(args), config_path=getattr(args, "config", None), profile=getattr(args, "profile", None)
        )
        if getattr(args, "print_job_script", False):
            return _print_job_script(settings)
        if getattr(args, "check", False):
            return _check(settings)
        if getattr(args, "show_settings", False):
            return _show_settings(settings)
        if getattr(args, "headless", False):
            _offer_cleanup(settings, interactive=False)
            settings = confirm_start(
                settings, interactive=False, allow_pending=getattr(args, "allow_pending", False)
            )
            from naist_dask_tui.core.headless import run_headless

            return run_headless(settings, name=getattr(args, "name", None))
        if settings.attach:  # a scheduler started elsewhere: watch it from this process
            from naist_dask_tui.console import run_console

            return run_console(settings)
        return _start_or_attach(args, _checked_keys(settings))
    except Exception as e:
        return _report(e)
    except KeyboardInterrupt:
        return 130


def _report(e: BaseException) -> int:
    from naist_dask_tui.core.registry import RegistryError

    if isinstance(e, SettingsError):
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if isinstance(e, (ControllerError, SgeError, RegistryError)):
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    if isinstance(e, Declined):
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    raise e
