"""Settings: the naist defaults, the five layers in order, profiles, and every bad value's message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask.config
import pytest

from naist_dask_tui.core.jobnames import JOB_NAME_PREFIX
from naist_dask_tui.core.nodecheck import interface_prologue
from naist_dask_tui.core.settings import (
    LAYERS,
    Settings,
    SettingsError,
    dask_config_layer,
    jobqueue_shipped_defaults,
    load_settings,
    validate,
)


def write_dask_yaml(home: Path, text: str) -> None:
    (home / "dask" / "jobqueue.yaml").write_text(text)
    dask.config.refresh(paths=[str(home / "dask")])


def write_config(home: Path, text: str) -> Path:
    path = home / "config" / "naist-dask-tui" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- the built-in profile ------------------------------------------------------------------------


def test_defaults_are_the_naist_profile(home):
    s = load_settings({}, env={})
    assert s == Settings()
    assert (s.profile, s.jobs, s.cores, s.processes, s.memory) == ("naist", 10, 24, 1, "250GB")
    assert (s.queue, s.interface, s.scheduler_interface) == ("grid_short.q", "ib0", "bond1")
    assert s.job_extra_directives == ("-pe smp 24",)
    assert set(s.sources.values()) == {"profile"}
    assert s.walltime is None and not s.explicit("memory")
    assert s.log_dir == str(home / "state" / "naist-dask-tui" / "logs")
    assert s.memory_bytes == 250 * 10**9


def test_log_dir_falls_back_to_home_without_xdg(home, monkeypatch):
    monkeypatch.delenv("XDG_STATE_HOME")
    assert Settings().log_dir == str(home / "home" / ".local" / "state" / "naist-dask-tui" / "logs")
    assert Settings(log_directory="~/logs").log_dir == str(home / "home" / "logs")


def test_sge_cluster_kwargs_are_exactly_what_sgecluster_takes(home):
    kwargs = load_settings({}, env={}).sge_cluster_kwargs()
    job_name = kwargs.pop("job_name")
    assert job_name.startswith(JOB_NAME_PREFIX + ".") and job_name.endswith(f".{os.getpid()}")
    assert kwargs == {
        "cores": 24,
        "memory": "250GB",
        "processes": 1,
        "queue": "grid_short.q",
        "project": None,
        "interface": "ib0",
        "scheduler_options": {"interface": "bond1", "dashboard_address": None},
        "local_directory": "/var/tmp",
        "job_extra_directives": ["-pe smp 24"],
        "resource_spec": None,
        "log_directory": str(home / "state" / "naist-dask-tui" / "logs"),
        # dask-jobqueue's 30 min walltime: retire at 25.5 min +- 90 s, 3 min before SGE's kill
        "worker_extra_args": ["--lifetime", "1530s", "--lifetime-stagger", "90s"],
        "security": True,
        "shared_temp_directory": str(home / "state" / "naist-dask-tui" / "tls" / str(os.getpid())),
        # ib0 exists on the compute nodes: each job checks it there first (core/nodecheck)
        "job_script_prologue": [interface_prologue("ib0")],
    }
    assert "security" not in load_settings({"tls": False}, env={}).sge_cluster_kwargs()
    with_more = load_settings({"walltime": "01:00:00", "dashboard": True}, env={}).sge_cluster_kwargs()
    assert with_more["walltime"] == "01:00:00"
    assert with_more["scheduler_options"]["dashboard_address"] == "127.0.0.1:8787"
    assert "job_extra" not in with_more
    assert "job_script_prologue" not in load_settings({"interface": ""}, env={}).sge_cluster_kwargs()


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, (1530.0, 90.0)),  # dask-jobqueue's default walltime, 30 min
        ({"walltime": "04:00:00"}, (12660.0, 300.0)),  # margin 24 min, stagger capped at 5 min
        ({"walltime": "120"}, (84.0, 6.0)),  # short walltime: margin a quarter of it
        ({"walltime": "04:00:00", "lifetime": "3h"}, (10800.0, 300.0)),
        ({"lifetime": "20m"}, (1200.0, 60.0)),
        ({"lifetime": "off"}, None),
        ({"lifetime": "0"}, None),
        ({"worker_extra_args": "--lifetime 10m"}, None),  # the user's own flag wins
    ],
)
def test_worker_lifetime_ends_before_the_walltime(overrides, expected):
    s = load_settings(overrides, env={})
    assert s.worker_lifetime() == expected
    args = s.sge_cluster_kwargs()["worker_extra_args"]
    if expected is None:
        assert args.count("--lifetime") == (1 if overrides.get("worker_extra_args") else 0)
    else:
        life, stagger = expected
        assert args[-4:] == ["--lifetime", f"{int(life)}s", "--lifetime-stagger", f"{int(stagger)}s"]
        assert life + stagger < s.walltime_seconds


# -- the layers, one above the other -------------------------------------------------------------


def test_each_layer_overrides_the_one_below(home):
    s = load_settings({}, env={})
    assert (s.memory, s.source_of("memory")) == ("250GB", "profile")

    write_dask_yaml(home, "jobqueue:\n  sge:\n    memory: 200GB\n    cores: 12\n    queue: dask.q\n")
    s = load_settings({}, env={})
    assert (s.memory, s.source_of("memory")) == ("200GB", "dask-config")
    assert s.origin_of("memory") == "dask config jobqueue.sge.memory"

    write_config(home, 'memory = "150GB"\ncores = 8\n')
    s = load_settings({}, env={})
    assert (s.memory, s.source_of("memory")) == ("150GB", "config-file")
    assert (s.cores, s.queue) == (8, "dask.q")  # the file wins cores, dask config keeps queue

    env = {"NAIST_DASK_TUI_MEMORY": "120GB"}
    s = load_settings({}, env=env)
    assert (s.memory, s.source_of("memory")) == ("120GB", "env")

    s = load_settings({"memory": "100GB"}, env=env)
    assert (s.memory, s.source_of("memory"), s.origin_of("memory")) == ("100GB", "cli", "--memory")
    assert (s.cores, s.source_of("cores")) == (8, "config-file")
    assert (s.queue, s.source_of("queue")) == ("dask.q", "dask-config")
    assert (s.jobs, s.source_of("jobs")) == (10, "profile")
    assert LAYERS == ("profile", "dask-config", "config-file", "env", "cli")


def test_dask_config_values_equal_to_jobqueue_defaults_do_not_count(home):
    # What dask-jobqueue copies into ~/.config/dask/jobqueue.yaml on first import: all defaults.
    write_dask_yaml(
        home,
        "jobqueue:\n  sge:\n    walltime: '00:30:00'\n    queue: null\n    cores: null\n"
        "    job-extra-directives: []\n    scheduler-options: {}\n",
    )
    s = load_settings({}, env={})
    assert s == Settings()
    assert set(s.sources.values()) == {"profile"}
    assert jobqueue_shipped_defaults()["walltime"] == "00:30:00"


def test_dask_config_keys_map_to_fields(home, monkeypatch):
    write_dask_yaml(
        home,
        "jobqueue:\n  sge:\n    walltime: '02:00:00'\n    local-directory: /scratch\n"
        "    job-extra-directives: ['-pe mpi 12', '-V']\n    resource-spec: mem_free=100G\n"
        "    worker-extra-args: ['--lifetime', '55m']\n    log-directory: /tmp/logs\n"
        "    scheduler-options:\n      interface: eth0\n    interface: eth1\n    project: lab\n"
        "    processes: 2\n",
    )
    s = load_settings({}, env={})
    assert s.walltime == "02:00:00" and s.local_directory == "/scratch"
    assert s.job_extra_directives == ("-pe mpi 12", "-V")
    assert s.resource_spec == "mem_free=100G" and s.worker_extra_args == ("--lifetime", "55m")
    assert s.log_dir == "/tmp/logs" and s.project == "lab" and s.processes == 2
    assert (s.scheduler_interface, s.interface) == ("eth0", "eth1")
    assert s.origin_of("scheduler_interface") == "dask config jobqueue.sge.scheduler-options.interface"


def test_dask_config_is_read_from_dask_environment_variables(home, monkeypatch):
    monkeypatch.setenv("DASK_JOBQUEUE__SGE__CORES", "16")
    dask.config.refresh(paths=[str(home / "dask")])
    s = load_settings({}, env={})
    assert (s.cores, s.source_of("cores")) == (16, "dask-config")


def test_deprecated_job_extra_in_dask_config_is_honoured(home):
    write_dask_yaml(home, "jobqueue:\n  sge:\n    job-extra: ['-pe old 4']\n")
    assert load_settings({}, env={}).job_extra_directives == ("-pe old 4",)
    assert dask_config_layer({"job-extra-directives": ["-pe new 4"], "job-extra": ["-pe old 4"]}) == {
        "job_extra_directives": (["-pe new 4"], "dask config jobqueue.sge.job-extra-directives")
    }


def test_environment_variables(home):
    env = {
        "NAIST_DASK_TUI_JOBS": "4",
        "NAIST_DASK_TUI_JOB_EXTRA_DIRECTIVES": "-pe smp 8; -l h_vmem=4G",
        "NAIST_DASK_TUI_WORKER_EXTRA_ARGS": "--lifetime 55m --lifetime-stagger 4m",
        "NAIST_DASK_TUI_DASHBOARD": "yes",
        "NAIST_DASK_TUI_WALLTIME": "",
        "NAIST_DASK_TUI_UNRELATED": "ignored",
    }
    s = load_settings({}, env=env)
    assert s.jobs == 4 and s.dashboard is True and s.walltime is None
    assert s.job_extra_directives == ("-pe smp 8", "-l h_vmem=4G")
    assert s.worker_extra_args == ("--lifetime", "55m", "--lifetime-stagger", "4m")
    assert s.origin_of("jobs") == "NAIST_DASK_TUI_JOBS"


def test_cli_list_replaces_the_profile_list(home):
    s = load_settings({"job_extra_directives": ["-pe smp 4", "-V"], "cores": 4}, env={})
    assert s.job_extra_directives == ("-pe smp 4", "-V")


# -- profiles --------------------------------------------------------------------------------------


def test_builtin_local_profile(home):
    s = load_settings({}, env={}, profile="local")
    assert s.profile == "local" and s.backend == "local" and s.resolved_backend() == "local"
    assert s.queue is None and s.job_extra_directives == () and s.interface is None
    assert s.origin_of("backend") == "built-in profile local" and not s.explicit("backend")


def test_named_profiles_inherit_and_extend(home):
    path = write_config(
        home,
        'profile = "lab"\nrefresh_interval = 2\n\n'
        '[profiles.lab]\ninherits = "big"\nmemory = "64GB"\n\n'
        '[profiles.big]\ncores = 48\njob-extra-directives = ["-pe smp 48"]\n\n'
        '[profiles.naist]\nqueue = "long.q"\n\n'
        '[profiles.laptop]\ninherits = "local"\njobs = 3\n',
    )
    s = load_settings({}, env={})
    assert (s.profile, s.source_of("profile")) == ("lab", "config-file")
    assert (s.cores, s.memory, s.job_extra_directives) == (48, "64GB", ("-pe smp 48",))
    assert s.queue == "grid_short.q"  # big does not inherit, so it starts from the dataclass defaults
    assert s.refresh_interval == 2.0 and s.source_of("refresh_interval") == "config-file"
    assert s.source_of("memory") == "profile" and s.explicit("memory")
    assert s.origin_of("memory") == f"{path} [profiles.lab]"
    assert s.origin_of("cores") == f"{path} [profiles.big]"

    naist = load_settings({}, env={}, profile="naist")  # the user's [profiles.naist] extends the built-in
    assert (naist.queue, naist.cores) == ("long.q", 24)

    laptop = load_settings({}, env={"NAIST_DASK_TUI_PROFILE": "laptop"})
    assert (laptop.profile, laptop.backend, laptop.jobs, laptop.queue) == ("laptop", "local", 3, None)
    assert laptop.origin_of("profile") == "NAIST_DASK_TUI_PROFILE"


def test_profile_errors(home):
    write_config(
        home,
        '[profiles.a]\ninherits = "b"\n[profiles.b]\ninherits = "a"\n'
        '[profiles.c]\ninherits = "nowhere"\n',
    )
    with pytest.raises(
        SettingsError,
        match=r"^profile: 'nope' is not a profile; known profiles: a, b, c, local, naist \(from --profile\)$",
    ):
        load_settings({}, env={}, profile="nope")
    with pytest.raises(SettingsError, match="inherit in a circle: a -> b -> a"):
        load_settings({}, env={}, profile="a")
    with pytest.raises(SettingsError, match=r"inherits: 'nowhere' is not a profile.*\[profiles.c\]"):
        load_settings({}, env={}, profile="c")


# -- the config file -------------------------------------------------------------------------------


def test_malformed_toml_names_the_file_and_line(home):
    path = write_config(home, 'jobs = 4\nmemory = "250GB\n')
    with pytest.raises(SettingsError) as e:
        load_settings({}, env={})
    assert e.value.field == "config"
    assert str(path) in str(e.value) and "line 2" in str(e.value)


def test_unreadable_config_file_is_named(home, tmp_path):
    # a directory where the file should be: unreadable as a file even for root
    (tmp_path / "config.toml").mkdir()
    with pytest.raises(SettingsError) as e:
        load_settings({}, config_path=tmp_path / "config.toml", env={})
    assert e.value.field == "config"
    assert str(tmp_path / "config.toml") in str(e.value) and "cannot be read" in str(e.value)


def test_unknown_key_names_the_key_and_file(home):
    path = write_config(home, 'memroy = "250GB"\n')
    with pytest.raises(SettingsError) as e:
        load_settings({}, env={})
    assert str(e.value).startswith("memroy: unknown setting 'memroy'")
    assert str(path) in str(e.value) and "memory" in str(e.value)

    write_config(home, '[profiles.lab]\nqueeu = "x"\n')
    with pytest.raises(SettingsError, match=r"unknown setting 'queeu' \[profiles.lab\]"):
        load_settings({}, env={})


def test_bad_value_in_file_names_the_file(home):
    path = write_config(home, "[profiles.lab]\njobs = -3\n")
    with pytest.raises(SettingsError) as e:
        load_settings({}, env={}, profile="lab")
    assert str(e.value) == f"jobs: -3 is too small; use an integer >= 0 (from {path} [profiles.lab])"


def test_explicit_config_path(home, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text("jobs = 7\n")
    assert load_settings({}, config_path=str(other), env={}).jobs == 7
    assert load_settings({}, env={"NAIST_DASK_TUI_CONFIG": str(other)}).jobs == 7
    with pytest.raises(SettingsError, match=r"^config: '.*missing.toml' does not exist"):
        load_settings({}, config_path=str(tmp_path / "missing.toml"), env={})


# -- validation messages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"memory": "250XB"},
         "memory: '250XB' is not a size; use a number with a unit, e.g. 250GB or 120GiB (from --memory)"),
        ({"memory": "0GB"}, "memory: '0GB' is not a positive size"),
        ({"jobs": "-1"}, "jobs: -1 is too small; use an integer >= 0 (from --jobs)"),
        ({"jobs": "ten"}, "jobs: 'ten' is not a whole number; use an integer >= 0 (from --jobs)"),
        ({"cores": "0"}, "cores: 0 is too small; use an integer >= 1 (from --cores)"),
        ({"cores": "2.5"}, "cores: '2.5' is not a whole number; use an integer >= 1"),
        ({"processes": "0"}, "processes: 0 is too small; use an integer >= 1"),
        ({"processes": "5"}, "processes: cores 24 cannot be split evenly into 5 processes; "
                             "use cores divisible by processes (cores from built-in profile naist, "
                             "processes from --processes)"),
        ({"walltime": "1h"}, "walltime: '1h' is not a walltime; use HH:MM:SS (e.g. 01:30:00) or a "
                             "number of seconds (e.g. 5400) (from --walltime)"),
        ({"walltime": "00:61:00"}, "walltime: '00:61:00' is not a walltime; use HH:MM:SS"),
        ({"lifetime": "soon"}, "lifetime: 'soon' is not a lifetime; use auto (end before the "
                               "walltime), off, or a duration such as 50m, 1h or 3000 (from --lifetime)"),
        ({"lifetime": "1h"}, "lifetime: lifetime 1h (plus its 5% stagger) does not end before the "
                             "walltime 00:30:00: SGE would kill the workers with their data first"),
        ({"lifetime": "50m", "walltime": "00:50:00"}, "lifetime: lifetime 50m (plus its 5% stagger)"),
        ({"backend": "slurm"}, "backend: 'slurm' is not a backend; use one of auto, sge, local (from --backend)"),
        ({"attach": "no port"}, "attach: 'no port' is not a scheduler address; use host:port, optionally "
                                "with tcp:// or tls://, e.g. tcp://login1:8786 (from --attach)"),
        ({"attach": "inproc://x:1"}, "attach: 'inproc://x:1' is not a scheduler address"),
        ({"refresh_interval": "0"}, "refresh_interval: '0' is not > 0; use seconds > 0"),
        ({"refresh_interval": "fast"}, "refresh_interval: 'fast' is not a number; use seconds > 0"),
        ({"adapt_min": "5", "adapt_max": "2"},
         "adapt: minimum 5 is above maximum 2; use MIN:MAX with MIN <= MAX (from --adapt)"),
        ({"adapt_min": "-1"}, "adapt_min: -1 is too small; use an integer >= 0 (from --adapt)"),
        ({"dashboard": "maybe"}, "dashboard: 'maybe' is not a yes/no value; use true or false"),
        ({"dashboard_address": "here"}, "dashboard_address: 'here' is not a dashboard address; use [HOST]:PORT"),
        ({"queue": ""}, None),  # empty means "not set": fine
    ],
)
def test_bad_values_name_the_field_and_the_accepted_form(home, overrides, expected):
    if expected is None:
        assert load_settings(overrides, env={}).queue is None
        return
    with pytest.raises(SettingsError) as e:
        load_settings(overrides, env={})
    assert isinstance(e.value, ValueError)
    assert str(e.value).startswith(expected), str(e.value)


def test_bad_env_value_names_the_variable(home):
    with pytest.raises(SettingsError) as e:
        load_settings({}, env={"NAIST_DASK_TUI_MEMORY": "lots"})
    assert str(e.value).endswith("(from NAIST_DASK_TUI_MEMORY)") and e.value.field == "memory"


def test_good_odd_values(home):
    s = load_settings(
        {"attach": "tls://10.0.0.1:8786", "walltime": "3600", "memory": "120 GiB", "dashboard_address": ":8788"},
        env={},
    )
    assert (s.attach, s.walltime, s.memory_bytes) == ("tls://10.0.0.1:8786", "3600", 120 * 2**30)
    assert load_settings({"attach": "login1:8786"}, env={}).attach == "tcp://login1:8786"


# -- derived settings ------------------------------------------------------------------------------


def test_resolved_backend():
    assert Settings(attach="tcp://h:1").resolved_backend(lambda n: "/bin/qsub") == "attach"
    assert Settings().resolved_backend(lambda n: "/usr/bin/qsub") == "sge"
    assert Settings().resolved_backend(lambda n: None) == "local"
    assert Settings(backend="sge").resolved_backend(lambda n: None) == "sge"


def test_resolved_for_local_sizes_only_profile_values(home):
    s = load_settings({}, env={}, profile="local").resolved_for_local(cpu_count=8, total_memory=16 * 2**30)
    assert (s.jobs, s.cores, s.memory) == (2, 4, "6.40GiB")
    assert len(s.notes) == 3 and "jobs 10 -> 2" in s.notes[0]

    kept = load_settings({"memory": "2GB", "jobs": "3"}, env={}, profile="local").resolved_for_local(8, 16 * 2**30)
    assert (kept.jobs, kept.cores, kept.memory) == (3, 4, "2GB")
    assert all("memory" not in n and "jobs" not in n for n in kept.notes)

    one_cpu = Settings().resolved_for_local(cpu_count=1, total_memory=2**30)
    assert one_cpu.cores == 1


def test_validate_checks_a_hand_built_settings():
    assert validate(Settings()) == Settings()
    with pytest.raises(SettingsError, match="^memory: '1XB' is not a size"):
        validate(Settings(memory="1XB"))
    with pytest.raises(SettingsError, match="^processes: cores 6 cannot be split evenly into 4"):
        validate(Settings(cores=6, processes=4))


def test_describe_lists_every_field_with_its_origin(home):
    lines = load_settings({"jobs": "3"}, env={}).describe()
    assert any(line.startswith("jobs") and line.rstrip().endswith("--jobs") for line in lines)
    assert any(line.startswith("memory") and "built-in profile naist" in line for line in lines)


def test_settings_modules_never_import_textual():
    code = (
        "import sys; import naist_dask_tui.core.settings, naist_dask_tui.core.preflight, "
        "naist_dask_tui.core.jobscript, naist_dask_tui.cli; "
        "sys.exit(1 if 'textual' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
