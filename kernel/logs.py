"""Logging of every dualcheck process: one line per record, JSON (``DUALCHECK_LOG_FORMAT=json``, for
deployments and log collectors) or text (the default, for a terminal).

JSON fields: ``timestamp``, ``level``, ``logger``, ``message``, ``role`` (record, api, worker, ...),
``request_id`` (the API request being served, else null), plus any ``extra=`` fields of the call.

Every message is one line: control characters (newlines, ESC of terminal sequences, C1 controls,
Unicode line separators) are written as ``\\xNN`` / ``\\uNNNN`` escapes, so text a caller sent (a path, a
header) cannot forge a second record or drive the terminal that shows the log.

Redaction, as a last line of defence (the code already avoids logging secrets): RTSP credentials in
any URL of the message or the traceback become ``***``; bytes, numpy arrays and long runs of
base64 or of numbers (an image or an embedding passed by mistake) are replaced by a placeholder.
"""
from __future__ import annotations

import contextvars
import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("dualcheck_request_id", default=None)
_role = "cli"

_URL_AUTH = re.compile(r"((?:rtsps?|https?|postgresql(?:\+\w+)?)://)[^/@\s'\"]+@", re.IGNORECASE)
_B64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{200,}")  # an encoded image/template; no id or hash is this long
_FLOAT_RUN = re.compile(r"(?:[-+]?\d*\.\d+(?:[eE][-+]?\d+)?[\s,;]+){16,}")  # an embedding's numbers
_BYTES_REPR = re.compile(r"b(['\"])(?:\\x[0-9a-f]{2}|[^'\"\\]|\\.){64,}?\1")
# credentials some cameras take in the query string (Dahua: realmonitor?channel=1&user=admin&password=...)
_QUERY_AUTH = re.compile(r"([?&;](?:user|username|usr|login|password|passwd|pwd|pass)=)[^&;#\s'\"]*", re.IGNORECASE)
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def redact(text: str) -> str:
    text = _URL_AUTH.sub(r"\1***@", text)
    text = _QUERY_AUTH.sub(r"\1***", text)
    text = _BYTES_REPR.sub("<bytes redacted>", text)
    text = _FLOAT_RUN.sub("<numbers redacted> ", text)
    return _B64_RUN.sub("<blob redacted>", text)


def escape_controls(text: str) -> str:
    """``text`` on one line with no terminal control sequence: each control character as an escape."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                         else f"\\u{ord(m.group()):04x}", text)


def _safe_arg(a):
    if isinstance(a, (bytes, bytearray, memoryview)):
        return f"<{len(a)} bytes redacted>"
    if type(a).__module__ == "numpy" and hasattr(a, "shape"):
        return f"<array {getattr(a, 'shape', '')} redacted>"
    return a


class ContextFilter(logging.Filter):
    """Adds role and request id; redacts the message (formatted here once, so args cannot leak)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = _role
        record.request_id = request_id.get()
        try:
            args = record.args
            if isinstance(args, tuple):
                args = tuple(_safe_arg(a) for a in args)
            elif isinstance(args, dict):
                args = {k: _safe_arg(v) for k, v in args.items()}
            msg = str(_safe_arg(record.msg)) % args if args else str(_safe_arg(record.msg))
        except Exception:  # a broken format string must not lose the record
            msg = str(record.msg)
        record.msg, record.args = escape_controls(redact(msg)), None
        return True


class _Redacting:
    def formatException(self, ei) -> str:  # tracebacks quote URLs (PyAV puts the camera URL in errors)
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redact(super().formatStack(stack_info))


class JsonLogFormatter(_Redacting, JsonFormatter):
    def __init__(self) -> None:
        super().__init__(["levelname", "name", "message", "role", "request_id"], timestamp=True,
                         rename_fields={"levelname": "level", "name": "logger"}, json_ensure_ascii=False)

    def process_log_record(self, log_record: dict) -> dict:
        for k, v in list(log_record.items()):  # extra= fields too
            if isinstance(v, (bytes, bytearray, memoryview)) or type(v).__module__ == "numpy":
                log_record[k] = f"<{type(v).__name__} redacted>"
            elif isinstance(v, str) and k != "message":
                log_record[k] = redact(v)
        return log_record


class TextLogFormatter(_Redacting, logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(role)s%(rid)s]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" {rid}" if rid else ""
        if not hasattr(record, "role"):
            record.role = _role
        return super().format(record)


def setup(level: str = "INFO", fmt: str = "text", role: str = "cli", stream=None) -> logging.Handler:
    """Route every logger of the process through one handler on the root logger. Returns the handler."""
    global _role
    _role = role
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonLogFormatter() if fmt == "json" else TextLogFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_dualcheck", False):
            root.removeHandler(h)
    handler._dualcheck = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step is noise
    # never below INFO, whatever the level: at DEBUG these quote what they process - Pillow an image's
    # EXIF tags and bytes, SQLAlchemy the bound parameters (templates, insured ids)
    for name in ("PIL", "sqlalchemy", "multipart", "python_multipart"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level))
                                         if name != "sqlalchemy" else logging.WARNING)
    # uvicorn's own loggers propagate to ours (serve passes log_config=None)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler


def set_role(role: str) -> None:
    global _role
    _role = role


def configured() -> bool:
    return any(getattr(h, "_dualcheck", False) for h in logging.getLogger().handlers)
