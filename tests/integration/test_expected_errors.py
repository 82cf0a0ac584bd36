"""One expected-error base that every face catches, and one mapping of unique violations."""

from __future__ import annotations

from typing import Any

import pytest

from debtgraph.domain.core import outbox
from debtgraph.domain.core.errors import DomainValidationError, ExpectedError, InvalidTransition
from debtgraph.domain.core.secrets import public_id
from debtgraph.domain.creditors.models import Role, User
from debtgraph.domain.debtors.csv_reader import CsvFormatError
from debtgraph.domain.debtors.ingestion import FileTooLarge
from debtgraph.domain.extraction.pdf import PdfRefused
from debtgraph.domain.oauth.grants import GrantError
from debtgraph.resolvers import errors, oauth
from debtgraph.server.app import Runtime

EXPECTED_FAILURES = [
    DomainValidationError,
    InvalidTransition,
    CsvFormatError,
    FileTooLarge,
    PdfRefused,
    GrantError,
    errors.InputError,
    errors.NotFound,
    errors.OperatorOnly,
    errors.MissingScope,
    errors.Unauthenticated,
    errors.Conflict,
    errors.Throttled,
    oauth.AuthorizeFailure,
    oauth.AuthorizeRedirect,
    oauth.BadCredentials,
]


@pytest.mark.parametrize("kind", EXPECTED_FAILURES, ids=lambda kind: kind.__name__)
def test_every_expected_failure_derives_from_the_one_base(kind: type[Exception]) -> None:
    assert issubclass(kind, ExpectedError)


def test_the_rest_faces_handle_the_one_base_only(app: Any) -> None:
    handled = set(app.exception_handlers)
    assert ExpectedError in handled
    assert handled.isdisjoint(set(EXPECTED_FAILURES))


def _user(email: str, clock: Any) -> User:
    now = clock.now()
    return User(
        public_id=public_id("usr"),
        role=Role.ADMIN.value,
        email=email,
        name="Ops",
        created_at=now,
        updated_at=now,
    )


async def test_a_duplicate_email_at_commit_is_refused_as_email_taken(
    runtime: Runtime, db: Any, clock: Any
) -> None:
    services = runtime.services
    async with db() as session:
        session.add(_user("ops@example.test", clock))
        await outbox.commit_and_publish(session, services.jobs, services.bus, services.clock)
    async with db() as session:
        # A change that did not flush itself meets the constraint at commit: same answer.
        session.add(_user("ops@example.test", clock))
        with pytest.raises(DomainValidationError) as refused:
            await outbox.commit_and_publish(session, services.jobs, services.bus, services.clock)
        await session.rollback()
    assert [e.as_dict() for e in refused.value.errors] == [
        {
            "field": "email",
            "code": "email_taken",
            "message": "A user with this email already exists.",
        }
    ]
