"""Turning raw setting values (strings from env and flags, TOML values, YAML values) into typed ones.

A converter is ``(field name, raw value) -> typed value``; it raises :class:`SettingsError`
naming the field, the value and the accepted form, without a source: the layer that read the
value adds where it came from. Each setting names its converter where it is declared
(:mod:`naist_dask_tui.core.settings_model`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

BACKENDS = ("auto", "sge", "local")

Converter = Callable[[str, Any], Any]


class SettingsError(ValueError):
    """A bad setting: ``str()`` names the field, the value, the accepted form and the source."""

    def __init__(self, field: str, message: str, source: str | None = None) -> None:
        self.field = field
        self.message = message
        self.source = source
        super().__init__(field, message, source)

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}"
        return f"{text} (from {self.source})" if self.source else text


# -- parsing accepted values (also used by the settings' derived properties) ----------------------


def parse_size(text: str) -> int:
    from dask.utils import parse_bytes

    return parse_bytes(text)


_WALLTIME = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d)$")


def walltime_seconds(text: str) -> float:
    """Seconds of a walltime already accepted by :func:`to_walltime` (HH:MM:SS or seconds)."""
    text = str(text).strip()
    m = _WALLTIME.match(text)
    if m is None:
        return float(text)
    return float(int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]))


def duration_seconds(text: str) -> float:
    from dask.utils import parse_timedelta

    return float(parse_timedelta(text, default="s"))


def _none_if_empty(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip().lower() in ("", "none", "null") else value


# -- converters --------------------------------------------------------------------------------------


def text(optional: bool = True) -> Converter:
    """A non-empty string (stripped); optional: empty, "none" or "null" mean not set."""

    def to_text(name: str, value: Any) -> str | None:
        if optional and _none_if_empty(value) is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise SettingsError(name, f"{value!r} is not a non-empty string")
        return value.strip()

    return to_text


def integer(minimum: int, optional: bool = False) -> Converter:
    """A whole number >= ``minimum``; optional: empty means not set."""

    def to_int(name: str, value: Any) -> int | None:
        if optional and _none_if_empty(value) is None:
            return None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            number = int(value)
        else:
            number = None
        if number is None:
            raise SettingsError(name, f"{value!r} is not a whole number; use an integer >= {minimum}")
        if number < minimum:
            raise SettingsError(name, f"{number} is too small; use an integer >= {minimum}")
        return number

    return to_int


def positive_seconds(name: str, value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number != number:
        raise SettingsError(name, f"{value!r} is not a number; use seconds > 0, e.g. 1 or 0.5")
    if number <= 0:
        raise SettingsError(name, f"{value!r} is not > 0; use seconds > 0, e.g. 1 or 0.5")
    return number


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def yes_no(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingsError(name, f"{value!r} is not a yes/no value; use true or false (1/0, yes/no)")


def size(name: str, value: Any) -> str:
    raw = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    accepted = "use a number with a unit, e.g. 250GB or 120GiB"
    if not raw:
        raise SettingsError(name, f"{value!r} is not a size; {accepted}")
    try:
        nbytes = parse_size(raw)
    except (ValueError, TypeError):
        raise SettingsError(name, f"{raw!r} is not a size; {accepted}") from None
    if nbytes <= 0:
        raise SettingsError(name, f"{raw!r} is not a positive size; {accepted}")
    return raw


def walltime(name: str, value: Any) -> str | None:
    if _none_if_empty(value) is None:
        return None
    accepted = "use HH:MM:SS (e.g. 01:30:00) or a number of seconds (e.g. 5400)"
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    raw = str(value).strip() if isinstance(value, str) else ""
    if (_WALLTIME.match(raw) and raw.replace(":", "").strip("0")) or (raw.isdigit() and int(raw) > 0):
        return raw
    raise SettingsError(name, f"{value!r} is not a walltime; {accepted}")


def _duration_or(
    name: str, value: Any, what: str, accepted: str, words: dict[str, str]
) -> str:
    """A duration (``50m``, ``1h``, ``3000``) kept as written, or one of ``words`` (mapped)."""
    if isinstance(value, bool) or value is None:
        raise SettingsError(name, f"{value!r} is not {what}; {accepted}")
    raw = str(value).strip().lower().replace(" ", "")
    if raw in words:
        return words[raw]
    try:
        seconds = duration_seconds(raw)
    except (ValueError, TypeError, KeyError):
        raise SettingsError(name, f"{value!r} is not {what}; {accepted}") from None
    if not seconds > 0:
        raise SettingsError(name, f"{value!r} is not {what}; {accepted}")
    return raw


def lifetime(name: str, value: Any) -> str:
    words = {"auto": "auto", "off": "off", "none": "off", "no": "off", "false": "off", "0": "off"}
    accepted = "use auto (end before the walltime), off, or a duration such as 50m, 1h or 3000"
    return _duration_or(name, value, "a lifetime", accepted, words)


def idle_timeout(name: str, value: Any) -> str:
    words = dict.fromkeys(("off", "none", "no", "false", "never"), "off")
    accepted = "use a duration such as 20m, 2h or 600 (seconds), or off"
    return _duration_or(name, value, "an idle timeout", accepted, words)


def backend(name: str, value: Any) -> str:
    raw = value.strip().lower() if isinstance(value, str) else value
    if raw not in BACKENDS:
        raise SettingsError(name, f"{value!r} is not a backend; use one of {', '.join(BACKENDS)}")
    return raw


def scheduler_address(name: str, value: Any) -> str | None:
    if _none_if_empty(value) is None:
        return None
    accepted = "use host:port, optionally with tcp:// or tls://, e.g. tcp://login1:8786"
    raw = value.strip() if isinstance(value, str) else ""
    if not raw:
        raise SettingsError(name, f"{value!r} is not a scheduler address; {accepted}")
    if "://" not in raw:
        raw = "tcp://" + raw
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, loc = parse_address(raw)
        if scheme not in ("tcp", "tls"):
            raise ValueError(scheme)
        host, port = parse_host_port(loc)
        if not host or not 0 < int(port) < 65536:
            raise ValueError(loc)
    except (ValueError, TypeError):
        raise SettingsError(name, f"{value!r} is not a scheduler address; {accepted}") from None
    return raw


def dashboard_address(name: str, value: Any) -> str:
    raw = value.strip() if isinstance(value, str) else str(value) if isinstance(value, int) else ""
    m = re.fullmatch(r"(?:(\[[0-9a-fA-F:]+\]|[^:\s]*):)?(\d+)", raw)
    if not m or not 0 <= int(m[2]) < 65536:
        raise SettingsError(
            name, f"{value!r} is not a dashboard address; use [HOST]:PORT, e.g. 127.0.0.1:8787 or :8787"
        )
    return raw


def string_list(split: Callable[[str], list[str]]) -> Converter:
    """A list of strings: a TOML/YAML list as is, a string (env, flags) cut by ``split``."""

    def to_list(name: str, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            try:
                items = split(value)
            except ValueError as e:
                raise SettingsError(name, str(e)) from None
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            items = list(value)
        else:
            raise SettingsError(name, f"{value!r} is not a list of strings")
        return tuple(s.strip() for s in items if s.strip())

    return to_list


def split_semicolons(raw: str) -> list[str]:
    return raw.split(";")


def split_shell(raw: str) -> list[str]:
    try:
        return shlex.split(raw)
    except ValueError as e:
        raise ValueError(f"{raw!r} cannot be split like a shell line ({e})") from None
