"""The one exception type that every caller-visible failure is raised as."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """A failure with the HTTP status and error body the caller should see.

    The message is written for the caller; it never carries a secret value. `outcome_unknown`
    marks a request that reached Twilio without an answer: it may have placed a call or sent a text.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        inner: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.inner = inner
        self.headers = dict(headers or {})
        self.outcome_unknown = outcome_unknown

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "target": self.target}
        if self.inner:
            error["innererror"] = self.inner
        return {"error": error}
