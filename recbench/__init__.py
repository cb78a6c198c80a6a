"""create-bench core: data (download, parse, split), metrics, model interface, reports."""

__version__ = "0.1.0"
