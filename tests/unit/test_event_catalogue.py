"""The event catalogue: every event the code raises is in it, and the outbox refuses others."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from debtgraph.domain.core import outbox
from debtgraph.domain.core.clock import FrozenClock
from debtgraph.domain.core.events import CATALOGUE, RECEIVABLE_STATUS_EVENTS, UnknownEventType
from debtgraph.domain.receivables.models import ReceivableStatus

ROOT = Path(__file__).resolve().parents[2] / "debtgraph"
# Functions that raise an event, and the position of their ``type`` argument.
RAISERS = {"record_event": None, "record_upload_event": 2}


class _Session:
    """Just enough of a session for record_event, which only appends."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        self.added: list[Any] = []

    def add(self, row: Any) -> None:
        self.added.append(row)


def _record(type_: str, object_type: str) -> _Session:
    session = _Session()
    outbox.record_event(
        session,  # type: ignore[arg-type]
        FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)),
        type=type_,
        object_type=object_type,
        object_id="1",
        obj={},
    )
    return session


def test_record_event_refuses_unknown_types_and_wrong_objects() -> None:
    with pytest.raises(UnknownEventType, match="not in the event catalogue"):
        _record("receivable.updated", "receivable")
    with pytest.raises(UnknownEventType, match="about a upload"):
        _record("upload.completed", "receivable")
    assert len(_record("upload.completed", "upload").added) == 1


def test_receivable_status_events_follow_the_statuses() -> None:
    assert set(RECEIVABLE_STATUS_EVENTS) == {f"receivable.{s.value}" for s in ReceivableStatus}
    assert set(RECEIVABLE_STATUS_EVENTS) <= set(CATALOGUE)


def test_the_issue_catalogue_is_all_there() -> None:
    assert {
        "receivable.created",
        "receivable.status_changed",
        "user.updated",
        "upload.progress",
        "upload.completed",
        "debtor.status_changed",
        "debtor.validated",
        "vop_log.created",
        "billing_attempt.updated",
    } <= set(CATALOGUE)


def _type_argument(call: ast.Call, position: int | None) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "type":
            return keyword.value
    if position is not None and len(call.args) > position:
        return call.args[position]
    return None


def _loop_values(function: ast.AST, name: str) -> list[ast.expr] | None:
    """The literal values a ``for name in (...)`` loop in the function gives ``name``."""
    for node in ast.walk(function):
        if (
            isinstance(node, ast.For)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and isinstance(node.iter, ast.Tuple | ast.List)
        ):
            return list(node.iter.elts)
    return None


def _check(value: ast.expr, where: str) -> None:
    if isinstance(value, ast.Constant):
        assert value.value in CATALOGUE, f"{where}: {value.value!r} is not catalogued"
    elif isinstance(value, ast.JoinedStr):
        # f"receivable.{status}": the status family, held to ReceivableStatus above.
        prefix = value.values[0]
        assert isinstance(prefix, ast.Constant), where
        assert prefix.value == "receivable.", f"{where}: uncatalogued event family"
    else:
        raise AssertionError(f"{where}: the event type is not a literal the test can check")


def test_every_call_site_raises_a_catalogued_type() -> None:
    checked = 0
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            params = {a.arg for a in function.args.args + function.args.kwonlyargs}
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                name = getattr(call.func, "attr", None) or getattr(call.func, "id", None)
                if name not in RAISERS or function.name in RAISERS:
                    continue
                value = _type_argument(call, RAISERS[name])
                where = f"{path.relative_to(ROOT)}:{call.lineno}"
                assert value is not None, where
                if isinstance(value, ast.Name) and value.id not in params:
                    loop = _loop_values(function, value.id)
                    assert loop is not None, f"{where}: cannot resolve {value.id}"
                    for item in loop:
                        _check(item, where)
                else:
                    _check(value, where)
                checked += 1
    # The receivable, user, upload and debtor changes at least (more as areas raise events).
    assert checked >= 8
