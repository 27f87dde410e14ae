"""How a setting is declared: once, as a field of :class:`~naist_dask_tui.core.settings_model.Settings`.

``setting(default, converter, help, ...)`` is a ``dataclasses.field`` whose metadata carries
everything the other places need: the converter (checking every layer's raw value), the key of
dask-jobqueue's ``jobqueue.sge`` config that means the same thing (and what dask-jobqueue ships
for it), the command-line flag with its metavar and help, and whether only an SGE cluster uses
it. The tables the layers read (converters, dask keys, flags, ``cli_overrides``) are derived
from these declarations (:func:`declared`, :func:`add_flags`, :func:`overrides`), so a new
setting is one declaration::

    walltime: str | None = setting(None, convert.walltime, "job walltime (-l h_rt)",
                                   metavar="HH:MM:SS", dask="walltime", dask_default="00:30:00")

Where each value came from is one map, ``Settings.provenance``: field -> :class:`Origin`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from naist_dask_tui.core.settings_convert import Converter

LAYERS = ("profile", "dask-config", "config-file", "env", "cli")


class Origin(NamedTuple):
    """Where one value came from: its layer (one of ``LAYERS``) and exactly where in it
    ("built-in profile naist", "--memory", "NAIST_DASK_TUI_JOBS", "<file> [profiles.lab]")."""

    layer: str
    where: str


@dataclass(frozen=True)
class Flag:
    """A command-line flag (``argparse.add_argument`` keywords). A flag that sets several fields
    (``--adapt MIN:MAX``) is one Flag object given to each of them, with ``to_fields`` turning
    the parsed value into ``{field: raw value}``."""

    name: str
    metavar: str | None = None
    help: str = ""
    dest: str | None = None  # default: the (first) field's name
    action: str | None = None
    nargs: str | None = None
    const: Any = None
    choices: tuple[str, ...] | None = None
    to_fields: Callable[[Any], dict[str, Any]] | None = None

    def add_to(self, parser: argparse.ArgumentParser, dest: str, help_text: str) -> None:
        options = {
            "dest": self.dest or dest, "metavar": self.metavar, "action": self.action,
            "nargs": self.nargs, "const": self.const, "choices": self.choices,
        }
        parser.add_argument(
            self.name, help=self.help or help_text, **{k: v for k, v in options.items() if v is not None}
        )


@dataclass(frozen=True)
class Spec:
    """One setting's declaration (the metadata of its dataclass field)."""

    convert: Converter
    help: str
    flag: Flag | None = None  # None: no command-line flag
    dask: str | None = None  # its jobqueue.sge key, e.g. "scheduler-options.interface"
    dask_default: Any = None  # what dask-jobqueue 0.9 ships for that key
    sge_only: bool = False  # a local cluster ignores it
    unset: str = "-"  # how --show-settings shows None

    def flag_name(self, field: str) -> str:
        """The flag named as the value's origin (also for a setting without its own flag)."""
        return self.flag.name if self.flag else "--" + field.replace("_", "-")


def setting(
    default: Any,
    convert: Converter,
    help: str,
    *,
    metavar: str | None = None,
    flag: Flag | None = None,
    dask: str | None = None,
    dask_default: Any = None,
    sge_only: bool = False,
    unset: str = "-",
) -> Any:
    """Declare a setting. ``metavar`` gives it the plain flag ``--field-name METAVAR`` with
    ``help``; ``flag`` a flag of another shape; neither: no flag (config file, env only)."""
    spec = Spec(convert, help, flag, dask, dask_default, sge_only, unset)
    if metavar is not None:
        spec = dataclasses.replace(spec, flag=Flag("", metavar))  # named once the field is known
    return dataclasses.field(default=default, metadata={"setting": spec})


def table(help: str, form: str) -> Any:
    """Declare a table of the config file (``[keys]``): read from the file only, checked by its
    user (``form`` says what the table holds, for the error when it is not a table)."""
    return dataclasses.field(
        default_factory=dict, compare=False, repr=False, metadata={"table": (help, form)}
    )


@functools.cache
def declared(cls: type) -> dict[str, Spec]:
    """The settings of ``cls`` in declaration order, name -> Spec (plain flags named). A
    subclass that declares more settings has them too. Do not change the dict."""
    specs = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("setting")
        if spec is None:
            continue
        if spec.flag is not None and not spec.flag.name:
            flag = dataclasses.replace(spec.flag, name="--" + f.name.replace("_", "-"))
            spec = dataclasses.replace(spec, flag=flag)
        specs[f.name] = spec
    return specs


@functools.cache
def tables(cls: type) -> dict[str, tuple[str, str]]:
    """The config-file tables of ``cls``: name -> (help, form)."""
    return {f.name: f.metadata["table"] for f in dataclasses.fields(cls) if "table" in f.metadata}


def add_flags(parser: argparse.ArgumentParser, specs: Mapping[str, Spec]) -> None:
    """One argparse argument per declared flag (a flag shared by two fields once)."""
    seen: set[int] = set()
    for name, spec in specs.items():
        if spec.flag is not None and id(spec.flag) not in seen:
            seen.add(id(spec.flag))
            spec.flag.add_to(parser, name, spec.help)


def overrides(args: argparse.Namespace, specs: Mapping[str, Spec]) -> dict[str, Any]:
    """The fields the command line sets: raw values of the flags that were given (the parser
    leaves out the others: ``argument_default=argparse.SUPPRESS``)."""
    given = vars(args)
    out: dict[str, Any] = {}
    seen: set[int] = set()
    for name, spec in specs.items():
        flag = spec.flag
        if flag is None or id(flag) in seen:
            continue
        seen.add(id(flag))
        dest = flag.dest or name
        if dest in given:
            out.update(flag.to_fields(given[dest]) if flag.to_fields else {name: given[dest]})
    return out
