"""naist-dask-tui: a terminal cluster console for Dask on Son of Grid Engine.

From your own script or notebook, on the login node where the console started the cluster::

    from naist_dask_tui import connect
    client = connect()          # or connect("name"), see `naist-dask-tui ls`
"""

__version__ = "0.1.0"


def connect(name=None, *, fuse_roots=True, **client_kwargs):
    """A ``distributed.Client`` connected to one of your running clusters (TLS, with the
    cluster's client credentials). With no name: your only cluster on this host. Unless
    ``fuse_roots=False``, dask.array graphs in this process then make each chunk in the task that
    uses it (see :func:`fuse_roots`)."""
    from naist_dask_tui.core.remote import connect as _connect

    return _connect(name, fuse_roots=fuse_roots, **client_kwargs)


def fuse_roots():
    """From now on in this process, dask.array graphs make each chunk in the task that uses it
    (``x_i`` and ``y_i`` of ``x + y`` generated where they are added, not copied between
    workers). ``connect()`` does this already; for a client made another way, e.g. after
    ``eval "$(naist-dask-tui env)"``."""
    from naist_dask_tui.core.rootfuse import enable

    enable()
