"""The one exception type every caller-visible failure is raised as."""

from __future__ import annotations

from shared.errors import ApiError


def test_an_api_error_reads_as_its_message() -> None:
    assert str(ApiError(503, "credentials_unavailable", "Key Vault could not be reached.")) == (
        "Key Vault could not be reached."
    )
