"""naist-dask-tui: a terminal cluster console for Dask on Son of Grid Engine."""

__version__ = "0.1.0"
