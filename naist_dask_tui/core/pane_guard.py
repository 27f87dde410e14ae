"""What keeps code pasted into the compute pane from hurting the console.

An old script starts its own cluster (``cluster = SGECluster(...)``, ``LocalCluster(...)``)
and its own ``client = Client()``: in the pane those would start a second cluster that the
panels never show, whose jobs the console never deletes, and whose logs spill onto the
terminal. And any ``.compute()``, ``client.gather`` or ``future.result()`` can bring gigabytes
to the login node. So, for the pane's namespace only (its ``__builtins__`` get their own
``__import__``; the console's own code is untouched):

* ``import distributed`` / ``from dask.distributed import Client`` / ``from dask_jobqueue
  import SGECluster`` give modules in which ``Client()`` with no address (or with the console's
  cluster) is the console's own client, whose ``close()`` keeps it open, and in which every
  cluster class refuses to start, saying what to do instead;
* the console's client checks the size of whatever it gathers while a run is going
  (:mod:`result_guard`), wherever the gather comes from.

Nothing here imports textual.
"""

from __future__ import annotations

import builtins
import types
from collections.abc import Callable
from typing import Any

# the modules whose Client / cluster classes the pane sees through a guard
GUARDED_MODULES = ("distributed", "dask.distributed", "dask_jobqueue")


class PaneRefusal(RuntimeError):
    """Something pasted code asked for that the console does not do; the message says what to
    do instead."""


def cluster_refused_message(name: str) -> str:
    return (
        f"{name}(...) is not started in the console: it would be a second cluster that the "
        "panels do not show and whose jobs or workers the console does not stop. The "
        "console's cluster is running already: `cluster` and `client` are in scope, and "
        "Client() with no address connects to it. Delete the lines that create a cluster "
        "and scale with + / - / s instead."
    )


def _is_cluster_class(value: Any) -> bool:
    try:
        from distributed.deploy.cluster import Cluster
    except Exception:  # pragma: no cover
        return False
    return isinstance(value, type) and issubclass(value, Cluster)


def _refused_cluster(name: str) -> type:
    def __new__(cls, *args: Any, **kwargs: Any):
        raise PaneRefusal(cluster_refused_message(name))

    return type(name, (), {"__new__": __new__, "__doc__": cluster_refused_message(name)})


class ConsoleClient:
    """``Client()`` in the pane: the console's own client. Closing it does nothing (the
    console needs it); everything else is the client's."""

    def __init__(self, client: Any) -> None:
        object.__setattr__(self, "_client", client)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._client, name, value)

    def close(self, *args: Any, **kwargs: Any) -> None:
        print("note: client.close() keeps the console's client open (the console needs it)")

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        raise PaneRefusal(
            "client.shutdown() would stop the console's scheduler and workers; quit the "
            "console with q to close the cluster"
        )

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __repr__(self) -> str:
        return repr(self._client)


def _client_class(real: type, session: Any) -> type:
    """Stands for ``distributed.Client`` in the pane."""

    def is_console(address: Any) -> bool:
        if address is None or address is session.cluster or address is session.client:
            return True
        try:
            return address == session.client.scheduler.address
        except Exception:
            return False

    def __new__(cls, address: Any = None, *args: Any, **kwargs: Any):
        if is_console(address) and not kwargs.get("asynchronous"):
            if address is None and kwargs.get("scheduler_file") is None:
                print("note: Client() in the console is the console's own client (connected "
                      "to its cluster); `client` is the same")
                return ConsoleClient(session.client)
            if kwargs.get("scheduler_file") is None:
                return ConsoleClient(session.client)
        return real(address, *args, **kwargs)

    return type("Client", (), {
        "__new__": __new__,
        "current": staticmethod(real.current),
        "__doc__": real.__doc__,
    })


class _PaneModule(types.ModuleType):
    """A module as the pane sees it: the real one, with Client and the cluster classes
    replaced."""

    def __init__(self, real: types.ModuleType, session: Any) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__["_real"] = real
        self.__dict__["_session"] = session
        self.__dict__["__all__"] = getattr(real, "__all__", [])

    def __getattr__(self, name: str) -> Any:
        real = self.__dict__["_real"]
        value = getattr(real, name)
        if name == "Client" and isinstance(value, type):
            value = _client_class(value, self.__dict__["_session"])
        elif _is_cluster_class(value):
            value = _refused_cluster(name)
        elif isinstance(value, types.ModuleType) and value.__name__ in GUARDED_MODULES:
            value = _PaneModule(value, self.__dict__["_session"])
        self.__dict__[name] = value
        return value

    def __dir__(self) -> list[str]:
        return dir(self.__dict__["_real"])


def pane_builtins(session: Any) -> dict[str, Any]:
    """The pane namespace's ``__builtins__``: the real ones with a guarding ``__import__``."""
    real_import = builtins.__import__
    cache: dict[str, _PaneModule] = {}

    def guarded(real: types.ModuleType) -> _PaneModule:
        module = cache.get(real.__name__)
        if module is None:
            module = cache[real.__name__] = _PaneModule(real, session)
        return module

    def pane_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                    level: int = 0) -> Any:
        module = real_import(name, globals, locals, fromlist, level)
        if level:
            return module
        if fromlist:
            return guarded(module) if name in GUARDED_MODULES else module
        top = name.split(".")[0]
        if top in GUARDED_MODULES:  # import distributed / import dask_jobqueue[.x]
            return guarded(module)
        if top == "dask" and name != "dask" and name.startswith("dask.distributed"):
            # import dask.distributed: the name bound is ``dask``; its .distributed is guarded
            return _DaskView(module, guarded)
        return module

    names = dict(vars(builtins))
    names["__import__"] = pane_import
    return names


class _DaskView(types.ModuleType):
    def __init__(self, real: types.ModuleType, guarded: Callable[[types.ModuleType], Any]) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__["_real"] = real
        self.__dict__["_guarded"] = guarded

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.__dict__["_real"], name)
        if name == "distributed":
            return self.__dict__["_guarded"](value)
        return value


__all__ = [
    "ConsoleClient",
    "PaneRefusal",
    "pane_builtins",
]
