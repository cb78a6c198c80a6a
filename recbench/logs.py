"""Readable logs for workflow jobs: to the job's log file and to stderr.

An exception that ends the job is logged too, traceback included, so the job's log file (what
``snakemake --show-failed-logs`` prints) holds the error and not only the lines before it.
"""

from __future__ import annotations

import logging
import sys


def setup(log_file: str | None = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.excepthook = _log_uncaught


def _log_uncaught(exc_type, exc, tb) -> None:
    """The job's uncaught exception, to every handler (stderr and the log file) once."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("job").critical("the job failed:", exc_info=(exc_type, exc, tb))
