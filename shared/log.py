"""Structured JSON logs on stdout, in the shape Cloud Logging reads.

Labels (job_id, tenant_id, execution_id, ...) come from a context variable, so every line a
request or job writes carries them without threading them through calls.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from shared.scrub import scrub_text

_labels: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("labels", default={})  # noqa: B039

_P = ParamSpec("_P")
_T = TypeVar("_T")

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: severity, message, time, logger, labels, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        labels = _labels.get()
        if labels:
            entry["logging.googleapis.com/labels"] = dict(labels)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            entry["stack_trace"] = safe_trace(record.exc_info[1])
        return json.dumps(entry, default=str, ensure_ascii=False)


def safe_trace(exc: BaseException, depth: int = 0) -> str:
    """The traceback with each exception's message scrubbed of data it quotes.

    Frames are kept whole (file, line, code); a database error keeps only its primary
    message, since its DETAIL quotes the row (`Failing row contains (...)`).
    """
    parts: list[str] = []
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None and depth < 5:
        parts.append(safe_trace(cause, depth + 1))
        parts.append("\nThe above exception led to the following one:\n\n")
    parts.append("Traceback (most recent call last):\n")
    parts.extend(traceback.format_tb(exc.__traceback__))
    parts.append(f"{type(exc).__module__}.{type(exc).__qualname__}: {_safe_message(exc)}\n")
    return "".join(parts)


def _safe_message(exc: BaseException) -> str:
    primary = getattr(getattr(exc, "diag", None), "message_primary", None)
    return scrub_text(primary if isinstance(primary, str) else str(exc))


def configure(level: int = logging.INFO) -> None:
    """Send the `syncq` loggers to stdout as JSON (idempotent)."""
    root = logging.getLogger("syncq")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def to_stderr() -> None:
    """Write the `syncq` log lines to stderr: a command's own output keeps stdout (the CLI)."""
    configure()
    for handler in logging.getLogger("syncq").handlers:
        if isinstance(handler, logging.StreamHandler) and isinstance(
            handler.formatter, JsonFormatter
        ):
            handler.stream = sys.stderr  # not setStream: it flushes the old one, maybe closed


def get_logger(name: str) -> logging.Logger:
    """A logger under the `syncq` tree."""
    configure()
    return logging.getLogger(f"syncq.{name}")


@contextlib.contextmanager
def labels(**values: object) -> Iterator[None]:
    """Add labels to every log line written inside the block."""
    merged = {**_labels.get(), **{k: str(v) for k, v in values.items() if v is not None}}
    token = _labels.set(merged)
    try:
        yield
    finally:
        _labels.reset(token)


def fields(**values: object) -> dict[str, Any]:
    """`extra=` for a log call: structured fields beside the message."""
    return {"fields": values}


class LabelledPool(ThreadPoolExecutor):
    """A thread pool whose tasks run with the labels of the thread that submitted them (a
    new thread starts with none), so their log lines carry the job's and tenant's ids."""

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        task = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return super().submit(task)
