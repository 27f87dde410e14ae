"""One typed, validated settings object, layered from five places.

Lowest to highest: the built-in profile (``naist``: the lab's values) < dask's own config
(``jobqueue.sge``, the ``~/.config/dask/jobqueue.yaml`` users already have) < our TOML file
(``$XDG_CONFIG_HOME/naist-dask-tui/config.toml``) < ``NAIST_DASK_TUI_<FIELD>`` environment
variables < command-line flags. Every value is checked once, here, and an error names the field,
what was given, the accepted form and where the value came from.

Each setting is declared once, as a field of :class:`Settings` (:mod:`settings_model`) that
carries its converter (:mod:`settings_convert`), dask key, flag and help (:mod:`settings_fields`);
the layers (:mod:`settings_layers`) and this loader derive what they need from it.
"""

from __future__ import annotations

import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from naist_dask_tui.core.settings_convert import BACKENDS, SettingsError
from naist_dask_tui.core.settings_fields import LAYERS, Origin, declared, tables
from naist_dask_tui.core.settings_layers import (
    DASK_KEYS,
    ENV_PREFIX,
    Layer,
    cli_layer,
    convert,
    dask_config_layer,
    default_config_path,
    env_layer,
    jobqueue_shipped_defaults,
    profile_layer,
    read_config_file,
)
from naist_dask_tui.core.settings_model import (
    BUILTIN_PROFILES,
    FIELD_NAMES,
    SETTINGS,
    SGE_ONLY,
    Settings,
)

__all__ = [
    "BACKENDS", "BUILTIN_PROFILES", "DASK_KEYS", "ENV_PREFIX", "FIELD_NAMES", "LAYERS", "SETTINGS",
    "SGE_ONLY", "Origin", "Settings", "SettingsError", "convert", "dask_config_layer",
    "default_config_path", "jobqueue_shipped_defaults", "load_settings", "validate",
]


def load_settings(
    cli_overrides: Mapping[str, Any] | None = None,
    config_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    profile: str | None = None,
    dask_config: Mapping[str, Any] | None = None,
    cls: type[Settings] = Settings,
) -> Settings:
    """Layer profile < dask config < config file < env < CLI, validate, return Settings.

    ``cli_overrides`` maps field names to values (strings are parsed; None means "not given").
    ``env`` is where the ``NAIST_DASK_TUI_*`` variables are read (default ``os.environ``); the
    XDG directories, like HOME, always come from the process environment. ``dask_config`` is
    the ``jobqueue.sge`` mapping; by default it is read from ``dask.config``. ``cls``: a
    subclass of Settings that declares more settings loads those too.
    """
    specs = declared(cls)
    env = os.environ if env is None else env
    cli = dict(cli_overrides or {})
    if profile is None:
        profile = cli.pop("profile", None)
    else:
        cli.pop("profile", None)

    explicit_path = config_path is not None or bool(env.get(ENV_PREFIX + "CONFIG"))
    if config_path is not None:
        path: Path | None = Path(config_path).expanduser()
    elif env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"]).expanduser()
    else:
        path = default_config_path()
    config = read_config_file(path, explicit_path, cls)

    if profile is not None:
        profile_origin = Origin("cli", "--profile")
    elif env.get(ENV_PREFIX + "PROFILE"):
        profile, profile_origin = env[ENV_PREFIX + "PROFILE"], Origin("env", ENV_PREFIX + "PROFILE")
    elif config.profile is not None:
        profile, profile_origin = config.profile[0], Origin("config-file", config.profile[1])
    else:
        profile, profile_origin = "naist", Origin("profile", "built-in profile naist")
    profile = convert("profile", profile, profile_origin.where, cls)

    builtin = Origin("profile", f"built-in profile {profile if profile in BUILTIN_PROFILES else 'naist'}")
    provenance = dict.fromkeys(specs, builtin)
    values: dict[str, Any] = {}
    layers: list[tuple[str, Layer]] = [
        ("profile", profile_layer(profile, profile_origin.where, config)),
        ("dask-config", dask_config_layer(dask_config, cls)),
        ("config-file", config.top),
        ("env", {k: v for k, v in env_layer(env, cls).items() if k != "profile"}),
        ("cli", cli_layer(cli, cls)),
    ]
    for layer_name, layer in layers:
        for name, (raw, where) in layer.items():
            values[name] = convert(name, raw, where, cls)
            provenance[name] = Origin(layer_name, where)
    values["profile"] = profile
    provenance["profile"] = profile_origin

    settings = cls(
        **values,
        **{name: types.MappingProxyType(config.tables.get(name, {})) for name in tables(cls)},
        provenance=types.MappingProxyType(provenance),
        config_path=str(config.path) if config.path is not None else None,
    )
    _check_together(settings)
    return settings


def _later(settings: Settings, a: str, b: str) -> str:
    """Of two fields, the one set by the higher layer (the one to blame)."""
    return b if LAYERS.index(settings.source_of(b)) >= LAYERS.index(settings.source_of(a)) else a


def _check_together(s: Settings) -> None:
    if s.cores % s.processes:
        blame = _later(s, "cores", "processes")
        raise SettingsError(
            blame,
            f"cores {s.cores} cannot be split evenly into {s.processes} processes; "
            f"use cores divisible by processes (cores from {s.origin_of('cores')}, "
            f"processes from {s.origin_of('processes')})",
        )
    if s.adapt_min is not None and s.adapt_max is not None and s.adapt_min > s.adapt_max:
        blame = _later(s, "adapt_min", "adapt_max")
        raise SettingsError(
            "adapt",
            f"minimum {s.adapt_min} is above maximum {s.adapt_max}; use MIN:MAX with MIN <= MAX",
            s.origin_of(blame),
        )
    lifetime, wall = s.worker_lifetime(), s.walltime_seconds
    if s.lifetime != "auto" and lifetime is not None and wall is not None and sum(lifetime) >= wall:
        blame = _later(s, "walltime", "lifetime")
        raise SettingsError(
            blame,
            f"lifetime {s.lifetime} (plus its 5% stagger) does not end before the walltime "
            f"{s.effective_walltime}: SGE would kill the workers with their data first; use a "
            "shorter lifetime, a longer walltime, or lifetime auto",
            s.origin_of(blame),
        )


def validate(settings: Settings) -> Settings:
    """Check a Settings built by hand (not through load_settings) the same way."""
    for name in declared(type(settings)):
        value = getattr(settings, name)
        convert(name, list(value) if isinstance(value, tuple) else value, settings.origin_of(name), type(settings))
    _check_together(settings)
    return settings
