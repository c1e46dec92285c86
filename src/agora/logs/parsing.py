"""Turning raw log lines into rows: NDJSON objects, nginx ``combined`` lines, nginx JSON lines.

Parsing happens when a batch is received, so each bad line can be rejected with its reason in
the answer while the rest go on. A row is a tuple in ``ROW_COLUMNS`` order, with the time as
epoch seconds and ``attrs`` as JSON text, ready to be buffered and then COPYed as it is.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, AnyStr, Literal

import orjson

ROW_COLUMNS = (
    "ts", "service", "host", "level", "message", "method", "path", "route", "status",
    "duration_ms", "bytes", "ip", "user_agent", "request_id", "trace_id", "attrs",
)  # fmt: skip
Row = tuple[Any, ...]
Format = Literal["ndjson", "nginx", "json"]
TEXT_FIELDS = ("service", "host", "method", "path", "ip", "user_agent")
ID_FIELDS = ("request_id", "trace_id")
MAX_TEXT = 8192
MAX_MESSAGE = 65536
ERROR_LEVELS = frozenset({"error", "fatal", "critical", "alert", "emerg", "panic"})
_LEVEL_ALIASES = {"warning": "warn", "err": "error", "crit": "critical", "information": "info"}

# nginx ``escape=json`` logs name their fields after nginx variables.
NGINX_JSON_ALIASES = {
    "time_iso8601": "ts", "time_local": "ts", "msec": "ts", "remote_addr": "ip",
    "request_method": "method", "request_uri": "path", "uri": "path",
    "body_bytes_sent": "bytes", "bytes_sent": "bytes", "http_user_agent": "user_agent",
    "http_x_request_id": "request_id", "hostname": "host",
}  # fmt: skip
_NGINX_SECONDS = ("request_time", "upstream_response_time")
_KNOWN = frozenset(ROW_COLUMNS) | {"msg"}
_TEXT_LIMITS = (
    *((name, MAX_TEXT) for name in (*TEXT_FIELDS, "route")),
    ("message", MAX_MESSAGE), ("msg", MAX_MESSAGE), ("request_id", 200), ("trace_id", 200),
)  # fmt: skip

# A quoted nginx field: runs of plain characters between escapes (the unrolled form of
# ``(?:[^"\\]|\\.)*``, which backtracks per character and costs twice as much).
_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_COMBINED = re.compile(
    rf"(\S+) \S+ (\S+) \[([^\]]+)\] {_QUOTED} (\d{{3}}) (\d+|-) {_QUOTED} {_QUOTED}"
    r"(?: (\d+(?:\.\d+)?|-))?\s*"
)
_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|[A-Za-z0-9_-]{20,})$"
)


class BadLine(ValueError):
    """A line that cannot be stored; its message is the reason given to the sender."""


@dataclass
class Parsed:
    """The rows a body gave, and the 1-based numbers of the lines refused, with reasons."""

    rows: list[Row] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Defaults:
    """Values for lines that do not carry them, and the accepted time span."""

    now: float
    oldest: float
    newest: float
    service: str | None = None
    host: str | None = None


def parse_body(body: bytes, fmt: Format, defaults: Defaults) -> Parsed:
    """Parse every non-empty line of ``body``; a bad line is recorded and skipped."""
    parsed = Parsed()
    if fmt == "nginx":
        # nginx lines are text: the body is decoded once, not line by line.
        lines = _lines(body.decode("utf-8", "replace").split("\n"))
        for number, line in lines:
            try:
                parsed.rows.append(_nginx_line(line, defaults))
            except BadLine as error:
                parsed.rejected.append((number, str(error)))
        return parsed
    aliases = NGINX_JSON_ALIASES if fmt == "json" else None
    for number, raw in _lines(body.split(b"\n")):
        try:
            parsed.rows.append(_json_line(raw, defaults, aliases))
        except BadLine as error:
            parsed.rejected.append((number, str(error)))
    return parsed


def _lines(lines: list[AnyStr]) -> Iterator[tuple[int, AnyStr]]:
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def _json_line(line: bytes, defaults: Defaults, aliases: dict[str, str] | None) -> Row:
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise BadLine(f"not JSON: {error.msg}") from None
    if not isinstance(document, dict):
        raise BadLine("not a JSON object")
    if aliases is not None:
        document = _nginx_json(document, aliases)
    return build_row(document, defaults)


def _nginx_json(document: dict[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    renamed: dict[str, Any] = {}
    for key, value in document.items():
        if value in ("", "-"):
            continue
        if key in _NGINX_SECONDS and "duration_ms" not in renamed:
            renamed["duration_ms"] = _number(value, key) * 1000.0
        elif key == "msec":
            renamed["ts"] = _number(value, key)
        else:
            renamed[aliases.get(key, key)] = value
    return renamed


def build_row(document: dict[str, Any], defaults: Defaults) -> Row:
    """The row of one JSON log object: known fields to columns, the rest to ``attrs``."""
    attrs = document.pop("attrs", None)
    if attrs is not None and not isinstance(attrs, dict):
        raise BadLine("attrs must be an object")
    extra = {key: value for key, value in document.items() if key not in _KNOWN}
    if extra:
        attrs = {**(attrs or {}), **extra}
    get = document.get
    # Only the fields a line has are checked: most lines carry a few of them.
    texts = {
        name: _text(value, name, limit)
        for name, limit in _TEXT_LIMITS
        if (value := get(name)) is not None
    }
    text = texts.get
    status = _integer(get("status"), "status")
    if status is not None and not 100 <= status <= 599:
        raise BadLine("status must be between 100 and 599")
    path = text("path")
    method = text("method")
    return (
        _timestamp(get("ts"), defaults),
        text("service") or defaults.service,
        text("host") or defaults.host,
        _level(get("level"), status),
        text("message") or text("msg"),
        method.upper() if method else None,
        path,
        text("route") or route_of(path),
        status,
        _duration(get("duration_ms")),
        _integer(get("bytes"), "bytes"),
        text("ip"),
        text("user_agent"),
        text("request_id"),
        text("trace_id"),
        orjson.dumps(attrs).decode() if attrs else "{}",
    )


def _nginx_line(line: str, defaults: Defaults) -> Row:
    match = _COMBINED.fullmatch(line)
    if match is None:
        raise BadLine("not an nginx combined line")
    ip, user, time_local, request, status_text, size, referer, agent, seconds = match.groups()
    method, _, rest = request.partition(" ")
    path = rest.rpartition(" ")[0] if " " in rest else rest
    status = int(status_text)
    attrs = {}
    if referer and referer != "-":
        attrs["referer"] = referer
    if user != "-":
        attrs["remote_user"] = user
    return (
        _within(_nginx_time(time_local), defaults),
        defaults.service or "nginx",
        defaults.host,
        "error" if status >= 500 else "warn" if status >= 400 else "info",
        request,
        method or None,
        path or None,
        route_of(path),
        status,
        float(seconds) * 1000.0 if seconds and seconds != "-" else None,
        int(size) if size != "-" else None,
        ip,
        agent or None,
        None,
        None,
        orjson.dumps(attrs).decode() if attrs else "{}",
    )


@functools.lru_cache(maxsize=4096)
def _nginx_time(value: str) -> float:
    try:
        return dt.datetime.strptime(value, "%d/%b/%Y:%H:%M:%S %z").timestamp()
    except ValueError:
        raise BadLine(f"bad time {value!r}") from None


def route_of(path: str | None) -> str | None:
    """A path's route: no query string, and id-like segments (numbers, UUIDs, long tokens)
    replaced by ``:id``, so rollups and ``by=route`` are per endpoint, not per object."""
    if not path:
        return None
    bare = path.partition("?")[0].partition("#")[0]
    return "/".join(map(_route_segment, bare.split("/")))


def _route_segment(part: str) -> str:
    # Cheap tests first: every id-like form but a number is at least 16 characters long.
    if part.isdecimal():
        return ":id"
    if len(part) < 16:
        return part
    return ":id" if _ID_SEGMENT.match(part) else part


def _timestamp(value: Any, defaults: Defaults) -> float:
    if value is None:
        return defaults.now
    if isinstance(value, bool):
        raise BadLine("ts must be RFC 3339 text or epoch seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _rfc3339(value)
    else:
        raise BadLine("ts must be RFC 3339 text or epoch seconds")
    return _within(seconds, defaults)


def _within(seconds: float, defaults: Defaults) -> float:
    if not math.isfinite(seconds) or seconds < defaults.oldest:
        raise BadLine("ts is older than the retention period")
    if seconds > defaults.newest:
        raise BadLine("ts is too far in the future")
    return seconds


def _rfc3339(value: str) -> float:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            raise BadLine(f"ts {value[:40]!r} is not RFC 3339") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _text(value: Any, name: str, limit: int) -> str | None:
    if isinstance(value, str):
        if len(value) <= limit and "\x00" not in value:
            return str(value) or None
        return value[:limit].replace("\x00", "") or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise BadLine(f"{name} must be text")


def _integer(value: Any, name: str) -> int | None:
    if value is None or value in ("", "-"):
        return None
    number = _number(value, name)
    if not number.is_integer() or number < 0 or number > 2**62:
        raise BadLine(f"{name} must be a whole number")
    return int(number)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise BadLine(f"{name} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadLine(f"{name} must be a number") from None
    if not math.isfinite(number):
        raise BadLine(f"{name} must be a number")
    return number


def _duration(value: Any) -> float | None:
    if value is None:
        return None
    number = _number(value, "duration_ms")
    if number < 0:
        raise BadLine("duration_ms must not be negative")
    return number


def _level(value: Any, status: int | None) -> str:
    if isinstance(value, str) and value:
        lowered = value.lower()[:20]
        return _LEVEL_ALIASES.get(lowered, lowered)
    if value is not None:
        raise BadLine("level must be text")
    if status is None:
        return "info"
    return "error" if status >= 500 else "warn" if status >= 400 else "info"


def is_error(level: str | None, status: int | None) -> bool:
    """Whether a line counts as an error: a 5xx answer or an error-like level."""
    return (status is not None and status >= 500) or level in ERROR_LEVELS


def rows_of(documents: Iterable[dict[str, Any]], defaults: Defaults) -> list[Row]:
    """Rows of log objects made by Agora itself (never refused: they are built well-formed)."""
    return [build_row(dict(document), defaults) for document in documents]
