"""Log lines as JSON objects, one per line, for log shippers (LOADBAY_LOG_FORMAT=json)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "message", "request_id"?, "exception"?} per record, plus the
    record's own `fields` (given as `extra={"fields": {...}}`), such as an access line's."""

    def format(self, record: logging.LogRecord) -> str:
        # A record's own fields first: they never hide the ones every line has.
        line: dict[str, object] = {
            **getattr(record, "fields", {}),
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id and request_id != "-":
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
