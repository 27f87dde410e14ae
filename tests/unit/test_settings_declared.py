"""Each setting is declared once (a field with its converter, dask key, flag and help); the
layers, the flags and --show-settings derive from the declarations, and where each value came
from is one map that survives the trip to the keeper."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from naist_dask_tui import cli
from naist_dask_tui.core import settings_convert as convert
from naist_dask_tui.core.settings import (
    DASK_KEYS,
    FIELD_NAMES,
    SGE_ONLY,
    Origin,
    Settings,
    SettingsError,
    load_settings,
    validate,
)
from naist_dask_tui.core.settings_fields import add_flags, declared, overrides, setting
from naist_dask_tui.core.settings_json import settings_from_json, settings_to_json
from naist_dask_tui.core.settings_layers import _FALLBACK_DASK_DEFAULTS

# -- a new setting is one declaration ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WithGpus(Settings):
    """A throwaway setting, declared the way every setting is: one line, nothing else."""

    gpus: int = setting(0, convert.integer(0), "GPUs per job", metavar="N", dask="gpus", sge_only=True)


def test_a_new_setting_is_one_declaration(home):
    s = load_settings({}, env={}, cls=WithGpus)
    assert (s.gpus, s.origin_of("gpus"), s.explicit("gpus")) == (0, "built-in profile naist", False)

    # dask-jobqueue's config, under the declared key
    s = load_settings({}, env={}, cls=WithGpus, dask_config={"gpus": 2})
    assert (s.gpus, s.source_of("gpus"), s.origin_of("gpus")) == (2, "dask-config", "dask config jobqueue.sge.gpus")

    # our config file, top level and in a profile
    path = home / "config" / "naist-dask-tui" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("gpus = 3\n[profiles.big]\ngpus = 8\n")
    assert load_settings({}, env={}, cls=WithGpus).gpus == 3
    big = load_settings({}, env={}, cls=WithGpus, profile="big")
    assert (big.gpus, big.origin_of("gpus")) == (3, str(path))  # the file's top level is above profiles
    path.write_text("[profiles.big]\ngpus = 8\n")
    assert load_settings({}, env={}, cls=WithGpus, profile="big").gpus == 8

    # the environment
    s = load_settings({}, env={"NAIST_DASK_TUI_GPUS": "4"}, cls=WithGpus)
    assert (s.gpus, s.origin_of("gpus")) == (4, "NAIST_DASK_TUI_GPUS")

    # a flag, with its metavar and help
    parser = argparse.ArgumentParser(argument_default=argparse.SUPPRESS)
    add_flags(parser, declared(WithGpus))
    assert "--gpus N" in parser.format_help() and "GPUs per job" in parser.format_help()
    given = overrides(parser.parse_args(["--gpus", "5", "--jobs", "2"]), declared(WithGpus))
    assert given == {"gpus": "5", "jobs": "2"}
    s = load_settings(given, env={"NAIST_DASK_TUI_GPUS": "4"}, cls=WithGpus)
    assert (s.gpus, s.source_of("gpus"), s.origin_of("gpus")) == (5, "cli", "--gpus")

    # a bad value is one line naming the field, the accepted form and where it came from
    with pytest.raises(SettingsError) as e:
        load_settings({}, env={"NAIST_DASK_TUI_GPUS": "-1"}, cls=WithGpus)
    assert str(e.value) == "gpus: -1 is too small; use an integer >= 0 (from NAIST_DASK_TUI_GPUS)"
    with pytest.raises(SettingsError, match=r"^gpus: 'x' is not a whole number"):
        validate(WithGpus(gpus="x"))

    # --show-settings lists it; a local cluster leaves it out, as declared
    assert any(line.split() == ["gpus", "5", "--gpus"] for line in s.describe())
    assert not any(line.startswith("gpus") for line in s.describe(backend="local"))
    # ... and the console's own settings are untouched
    assert "gpus" not in declared(Settings) and "gpus" not in FIELD_NAMES


# -- what the declarations derive -------------------------------------------------------------------


def test_the_derived_tables_are_the_ones_written_by_hand_before():
    # what settings.py listed by hand before the declarations (DASK_KEYS, SGE_ONLY, the
    # fallback of dask-jobqueue's defaults): derived now, the same
    assert DASK_KEYS == {
        "cores": "cores", "memory": "memory", "processes": "processes", "queue": "queue",
        "project": "project", "walltime": "walltime", "interface": "interface",
        "local-directory": "local_directory", "job-extra-directives": "job_extra_directives",
        "resource-spec": "resource_spec", "log-directory": "log_directory",
        "worker-extra-args": "worker_extra_args", "scheduler-options.interface": "scheduler_interface",
    }
    assert set(SGE_ONLY) == {
        "queue", "project", "walltime", "lifetime", "interface", "scheduler_interface",
        "job_extra_directives", "resource_spec", "worker_extra_args", "tls", "skip_interface_check",
    }
    defaults = {k: (list(v) if isinstance(v, tuple) else v) for k, v in _FALLBACK_DASK_DEFAULTS.items()}
    assert defaults == {**dict.fromkeys(DASK_KEYS), "walltime": "00:30:00", "job-extra-directives": [],
                        "worker-extra-args": [], "job-extra": None}
    assert FIELD_NAMES[:4] == ("profile", "backend", "attach", "jobs") and "keys" not in FIELD_NAMES


def test_every_setting_has_a_converter_help_and_a_flag_or_a_reason():
    specs = declared(Settings)
    no_flag = {name for name, spec in specs.items() if spec.flag is None}
    assert no_flag == {"worker_extra_args"}  # a shell line: config file, env and dask config only
    for name, spec in specs.items():
        assert callable(spec.convert) and spec.help, name
    flags = [a.option_strings[0] for a in cli.build_parser()._actions if a.option_strings]
    assert len(flags) == len(set(flags))
    # two flags set two settings each; --no-tls turns one off
    assert specs["adapt_min"].flag is specs["adapt_max"].flag
    assert specs["dashboard"].flag is specs["dashboard_address"].flag
    args = cli.build_parser().parse_args(["--no-tls", "--profile", "local"])
    assert cli.cli_overrides(args) == {"tls": False, "profile": "local"}


# -- where values came from: one map ----------------------------------------------------------------


def test_one_provenance_map_and_its_views(home):
    s = load_settings({"jobs": "3"}, env={"NAIST_DASK_TUI_MEMORY": "2GB"})
    assert s.provenance["jobs"] == Origin("cli", "--jobs")
    assert s.provenance["memory"] == Origin("env", "NAIST_DASK_TUI_MEMORY")
    assert (s.sources["jobs"], s.origins["jobs"]) == ("cli", "--jobs")
    assert set(s.provenance) == set(FIELD_NAMES)
    answered = s.with_values(Origin("cli", "the answer at start"), jobs=5)
    assert (answered.jobs, answered.origin_of("jobs"), answered.source_of("jobs")) == (5, "the answer at start", "cli")
    assert s.jobs == 3 and s.origin_of("jobs") == "--jobs"  # the original is unchanged


def test_settings_survive_the_trip_to_the_keeper(home):
    path = home / "config" / "naist-dask-tui" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('memory = "64GB"\n[keys]\n"main.quit" = "ctrl+q"\n')
    s = load_settings({"jobs": "3", "job_extra_directives": ["-pe smp 4", "-V"]}, env={}, profile="local")
    s = s.resolved_for_local(cpu_count=4, total_memory=8 * 2**30)
    back = settings_from_json(settings_to_json(s))
    assert back == s
    assert dict(back.provenance) == dict(s.provenance)
    assert back.origin_of("memory") == str(path) and back.origin_of("cores").endswith("sized for this machine")
    assert dict(back.keys) == {"main.quit": "ctrl+q"} and back.config_path == str(path)
    assert back.notes == s.notes and back.job_extra_directives == ("-pe smp 4", "-V")
