"""Small pieces of the foundation checked in isolation."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import strawberry

from debtgraph.domain.core import secrets
from debtgraph.resolvers.errors import NotFound
from debtgraph.schema.base import DebtgraphMaskErrors
from debtgraph.server.logging import JsonFormatter, request_id_var


def test_json_log_lines_carry_the_request_id() -> None:
    token = request_id_var.set("req-42")
    try:
        record = logging.LogRecord("debtgraph", logging.INFO, __file__, 1, "hello %s", ("x",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello x"
    assert line["request_id"] == "req-42"
    assert line["level"] == "INFO"


def test_graphql_masks_unexpected_errors_but_not_expected_ones() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        def boom(self) -> str:
            raise RuntimeError("database password is hunter2")

        @strawberry.field
        def missing(self) -> str | None:
            raise NotFound("Upload")

    schema = strawberry.Schema(query=Query, extensions=[DebtgraphMaskErrors])
    result = schema.execute_sync("{ boom }")
    assert result.errors is not None
    assert result.errors[0].message == "Unexpected error."
    assert "hunter2" not in str(result.errors[0].formatted)
    missing = schema.execute_sync("{ missing }")
    assert missing.errors is not None
    assert missing.errors[0].message == "Upload not found."
    assert missing.errors[0].extensions == {"code": "NOT_FOUND"}


def test_unknown_email_costs_one_argon2_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = secrets._hasher
    stored = secrets.hash_password("right")

    class Counting:
        def verify(self, hash_: str, password: str) -> bool:
            calls.append(hash_)
            return real.verify(hash_, password)

    monkeypatch.setattr(secrets, "_hasher", Counting())
    assert secrets.verify_password(stored, "wrong") is False
    assert secrets.verify_password(None, "whatever") is False
    assert secrets.verify_password(stored, "right") is True
    assert len(calls) == 3  # the unknown user verified against a dummy hash too
    assert secrets.verify_password("not-a-hash", "x") is False
