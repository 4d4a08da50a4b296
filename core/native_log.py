"""TensorFlow's C++ libraries write their log lines (oneDNN notes, CUDA probes, "failed call to cuInit" on a CPU
machine) straight to file descriptor 2, past Python's logging and TF_CPP_MIN_LOG_LEVEL: TensorFlow 2.21 logs
through absl. The command line and the app's server point that descriptor at a log file under the studio home
and keep Python's own stderr (progress, errors, Streamlit's log) on the terminal."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

MAX_BYTES = 5 * 2**20  # a longer log starts afresh (the previous one is kept as .1)
_redirected: list[Path] = []


def native_logs_to_file(path: Path) -> Path:
    """From now on, what C++ code writes to stderr goes to path (core.paths.native_log()); Python's sys.stderr and
    every logging handler that wrote to it still reach the terminal. Once per process; returns the log's path."""
    if _redirected:
        return _redirected[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.stat().st_size > MAX_BYTES:
        path.replace(path.with_suffix(".log.1"))
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    os.close(log)
    old = {id(sys.stderr), id(sys.__stderr__)}
    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                      if isinstance(v, logging.Logger))]
    for handler in (h for lg in loggers for h in lg.handlers):
        if isinstance(handler, logging.StreamHandler) and id(handler.stream) in old:
            handler.setStream(terminal)
    sys.stderr = terminal
    _redirected.append(path)
    return path
