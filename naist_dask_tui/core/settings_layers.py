"""The layers settings are read from. Each yields ``{field: (raw value, where)}``.

Lowest to highest: a profile (built-in, or the config file's ``[profiles.NAME]``), dask's own
config (``jobqueue.sge``), our TOML file's top level, ``NAIST_DASK_TUI_<FIELD>`` environment
variables, command-line flags. Which fields each layer may set, and under which names, comes
from the settings' declarations.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naist_dask_tui.core import paths
from naist_dask_tui.core.settings_convert import SettingsError
from naist_dask_tui.core.settings_fields import declared, tables
from naist_dask_tui.core.settings_model import BUILTIN_PROFILES, SETTINGS, Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

ENV_PREFIX = "NAIST_DASK_TUI_"

Layer = dict[str, tuple[Any, str]]


def convert(name: str, value: Any, source: str | None = None, cls: type = Settings) -> Any:
    """The typed value of one field, or SettingsError naming the field and the source."""
    try:
        return declared(cls)[name].convert(name, value)
    except SettingsError as e:
        if e.source is None:
            e.source = source
        raise


# -- dask-jobqueue's config -------------------------------------------------------------------------

def dask_keys(cls: type = Settings) -> dict[str, str]:
    """jobqueue.sge keys that mean one of our fields: key -> field."""
    return {spec.dask: name for name, spec in declared(cls).items() if spec.dask}


DASK_KEYS = dask_keys()
# Names dask-jobqueue renamed: honoured when the new one is not set, as dask-jobqueue does.
_OLD_DASK_KEYS = {"job-extra": "job_extra_directives"}
# What dask-jobqueue 0.9 ships for those keys, used if its jobqueue.yaml cannot be read.
_FALLBACK_DASK_DEFAULTS = {
    **{spec.dask: spec.dask_default for spec in SETTINGS.values() if spec.dask},
    **dict.fromkeys(_OLD_DASK_KEYS),
}


def _flatten_dask(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """jobqueue.sge as {"key": value, "scheduler-options.interface": value}, keys hyphenated."""
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        key = str(key).replace("_", "-")
        if key == "scheduler-options" and isinstance(value, Mapping):
            for sub, subvalue in value.items():
                flat[f"scheduler-options.{str(sub).replace('_', '-')}"] = subvalue
        else:
            flat[key] = value
    return flat


def jobqueue_shipped_defaults() -> dict[str, Any]:
    """The ``jobqueue.sge`` defaults dask-jobqueue ships (read from its jobqueue.yaml)."""
    return dict(_read_jobqueue_shipped_defaults())


@functools.lru_cache(maxsize=1)
def _read_jobqueue_shipped_defaults() -> dict[str, Any]:
    # Read once: the walltime fallback is asked for by validation and by the controller.
    try:
        spec = importlib.util.find_spec("dask_jobqueue")
        directory = spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None
        if directory is None:
            return dict(_FALLBACK_DASK_DEFAULTS)
        import yaml

        with open(os.path.join(directory, "jobqueue.yaml")) as f:
            shipped = yaml.safe_load(f)["jobqueue"]["sge"]
        return _flatten_dask(shipped)
    except (OSError, KeyError, TypeError, ImportError):
        return dict(_FALLBACK_DASK_DEFAULTS)


def _same(a: Any, b: Any) -> bool:
    def norm(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    return norm(a) == norm(b)


def dask_config_layer(dask_config: Mapping[str, Any] | None = None, cls: type = Settings) -> Layer:
    """The user's ``jobqueue.sge`` values that differ from what dask-jobqueue ships."""
    if dask_config is None:
        import dask.config

        dask_config = dask.config.get("jobqueue.sge", default=None) or {}
    flat = _flatten_dask(dask_config)
    defaults = jobqueue_shipped_defaults()
    layer: Layer = {}
    for key, name in dask_keys(cls).items():
        if key in flat and not _same(flat[key], defaults.get(key)):
            if flat[key] is None:
                continue  # dask-jobqueue's "not set"
            layer[name] = (flat[key], f"dask config jobqueue.sge.{key}")
    for key, name in _OLD_DASK_KEYS.items():
        old = flat.get(key)
        if old and name not in layer:
            layer[name] = (old, f"dask config jobqueue.sge.{key}")
    return layer


# -- our config file ----------------------------------------------------------------------------------


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    return paths.config_dir(env) / "config.toml"


@dataclass
class ConfigFile:
    path: Path | None
    top: Layer
    profile: tuple[str, str] | None  # (name, origin)
    profiles: dict[str, tuple[Layer, str | None, str]]  # name -> (values, inherits, origin)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # [keys] ..., raw


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str, path: Path) -> Layer:
    layer: Layer = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in allowed:
            known = ", ".join(sorted(k for k in allowed if k != "profiles"))
            raise SettingsError(
                key, f"unknown setting {key!r}{where} in {path}; known settings: {known}", source=str(path)
            )
        layer[name] = (value, f"{path}{where}")
    return layer


def read_config_file(path: Path | None, explicit: bool, cls: type = Settings) -> ConfigFile:
    """Parse our TOML file; a missing default file is fine, a missing --config file is not."""
    empty = ConfigFile(None, {}, None, {})
    if path is None:
        return empty
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if explicit:
            raise SettingsError("config", f"{str(path)!r} does not exist; give the path of a TOML file") from None
        return empty
    except tomllib.TOMLDecodeError as e:
        raise SettingsError("config", f"{path} is not valid TOML: {e}") from None
    except OSError as e:
        raise SettingsError("config", f"{path} cannot be read: {e.strerror or e}") from None

    names = set(declared(cls))
    found_tables = {}
    for name, (_, form) in tables(cls).items():
        value = data.pop(name, None)
        if value is not None and not isinstance(value, dict):
            raise SettingsError(name, f"must be a table ({form}) in {path}", str(path))
        found_tables[name] = dict(value or {})
    top = _check_keys(data, names | {"profiles"}, "", path)
    profile = None
    if "profile" in top:
        value, origin = top.pop("profile")
        profile = (convert("profile", value, origin, cls), origin)
    profiles: dict[str, tuple[Layer, str | None, str]] = {}
    raw_profiles = top.pop("profiles", (None, ""))[0]
    if raw_profiles is not None:
        if not isinstance(raw_profiles, dict):
            raise SettingsError("profiles", f"must be a table of [profiles.NAME] tables in {path}", str(path))
        for name, table in raw_profiles.items():
            where = f" [profiles.{name}]"
            if not isinstance(table, dict):
                raise SettingsError("profiles", f"{name!r} must be a table{where} in {path}", str(path))
            values = _check_keys(table, (names - {"profile"}) | {"inherits"}, where, path)
            inherits = values.pop("inherits", (None, ""))[0]
            if inherits is not None and not isinstance(inherits, str):
                raise SettingsError("inherits", f"{inherits!r} is not a profile name{where} in {path}", str(path))
            profiles[name] = (values, inherits, f"{path}{where}")
    return ConfigFile(path, top, profile, profiles, found_tables)


def profile_layer(name: str, source: str, config: ConfigFile) -> Layer:
    """The values of a profile: built-in, user-defined, or a built-in extended by the user."""
    known = sorted(set(BUILTIN_PROFILES) | set(config.profiles))

    def resolve(current: str, chain: tuple[str, ...]) -> Layer:
        if current in chain:
            loop = " -> ".join(chain + (current,))
            raise SettingsError("inherits", f"profiles inherit in a circle: {loop}", str(config.path))
        layer: Layer = {}
        user = config.profiles.get(current)
        inherits = user[1] if user else None
        if inherits is not None:
            if inherits not in BUILTIN_PROFILES and inherits not in config.profiles:
                raise SettingsError(
                    "inherits", f"{inherits!r} is not a profile; known profiles: {', '.join(known)}", user[2]
                )
            layer.update(resolve(inherits, chain + (current,)))
        elif current in BUILTIN_PROFILES:
            layer.update(
                (k, (v, f"built-in profile {current}")) for k, v in BUILTIN_PROFILES[current].items()
            )
        if user:
            layer.update(user[0])
        return layer

    if name not in BUILTIN_PROFILES and name not in config.profiles:
        raise SettingsError("profile", f"{name!r} is not a profile; known profiles: {', '.join(known)}", source)
    return resolve(name, ())


# -- environment and command line ------------------------------------------------------------------


def env_layer(env: Mapping[str, str], cls: type = Settings) -> Layer:
    layer: Layer = {}
    for name in declared(cls):
        var = ENV_PREFIX + name.upper()
        if var in env:
            layer[name] = (env[var], var)
    return layer


def cli_layer(overrides: Mapping[str, Any], cls: type = Settings) -> Layer:
    specs = declared(cls)
    layer: Layer = {}
    for name, value in overrides.items():
        if name not in specs:
            raise SettingsError(name, f"is not a setting; known settings: {', '.join(specs)}", "command line")
        if value is None:
            continue
        layer[name] = (value, specs[name].flag_name(name))
    return layer
