"""naist-dask-tui: a terminal cluster console for Dask on Son of Grid Engine.

From your own script or notebook, on the login node where the console started the cluster::

    from naist_dask_tui import connect
    client = connect()          # or connect("name"), see `naist-dask-tui ls`
"""

__version__ = "0.1.0"


def connect(name=None, **client_kwargs):
    """A ``distributed.Client`` connected to one of your running clusters (TLS, with the
    cluster's client credentials). With no name: your only cluster on this host."""
    from naist_dask_tui.core.remote import connect as _connect

    return _connect(name, **client_kwargs)
