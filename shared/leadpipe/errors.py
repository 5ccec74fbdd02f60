"""Typed errors. Each carries a stable machine code, a human message and optional details.

The HTTP edge maps them to status codes in one place (``http_status``); the rest of the library only raises them.
"""

from __future__ import annotations

from typing import Any


class LeadpipeError(Exception):
    """Base class of every error leadpipe raises on purpose."""

    code = "error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(LeadpipeError):
    code = "bad_request"
    http_status = 400


class Unauthorized(LeadpipeError):
    """No API key, or one that is unknown or revoked (HTTP 401)."""

    code = "unauthorized"
    http_status = 401


class NotFound(LeadpipeError):
    code = "not_found"
    http_status = 404


class Conflict(LeadpipeError):
    code = "conflict"
    http_status = 409


class PayloadTooLarge(LeadpipeError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(LeadpipeError):
    code = "unsupported_media_type"
    http_status = 415


class ConfigurationError(LeadpipeError):
    """The function's environment is missing or has an invalid setting (a deployment problem, not user input)."""

    code = "configuration_error"
    http_status = 500


class TransientError(LeadpipeError):
    """A dependency failed in a way worth retrying (throttling, conflicts, partial batch failures)."""

    code = "transient"
    http_status = 503


class ImportFileError(LeadpipeError):
    """The uploaded file as a whole cannot be imported (empty, binary, no email column, ...)."""

    code = "invalid_file"
    http_status = 400
