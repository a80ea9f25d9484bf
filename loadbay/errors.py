"""Domain errors: expected failures carry a machine code and an HTTP status."""

from __future__ import annotations

from typing import Any


class LoadbayError(Exception):
    """An expected failure; each surface renders it in its own error envelope."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}
        if code is not None:
            self.code = code


class InvalidInput(LoadbayError):
    status_code = 400
    code = "invalid_input"


class UnprocessableInput(LoadbayError):
    status_code = 422
    code = "validation_error"


class PayloadTooLarge(LoadbayError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(LoadbayError):
    status_code = 415
    code = "unsupported_media_type"


class NotFound(LoadbayError):
    status_code = 404
    code = "not_found"


class Conflict(LoadbayError):
    status_code = 409
    code = "conflict"


class Unauthorized(LoadbayError):
    status_code = 401
    code = "unauthorized"


class Forbidden(LoadbayError):
    status_code = 403
    code = "forbidden"


class RateLimited(LoadbayError):
    status_code = 429
    code = "rate_limited"
