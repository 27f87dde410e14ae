"""Settings as JSON, to hand them from the console that validated them to the keeper it starts.

The keeper must run with exactly the settings the user saw checked (and, for the local backend,
sized), not re-read the layers later; every field, with where it came from, survives the trip.
"""

from __future__ import annotations

import dataclasses
import json
import types

from naist_dask_tui.core.settings import Origin, Settings


def settings_to_json(settings: Settings) -> str:
    data = {}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if isinstance(value, types.MappingProxyType):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[f.name] = value
    return json.dumps(data, indent=1)


def settings_from_json(text: str) -> Settings:
    data = json.loads(text)
    values = {}
    for f in dataclasses.fields(Settings):
        if f.name not in data:
            continue  # a field added since: its default
        value = data[f.name]
        if f.name == "provenance":
            value = types.MappingProxyType({k: Origin(*v) for k, v in value.items()})
        elif isinstance(value, dict):
            value = types.MappingProxyType(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return Settings(**values)
