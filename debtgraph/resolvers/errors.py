"""Expected failures of use cases, transport-free; each face renders them in its own shape.

They derive from the domain's one :class:`ExpectedError`, like the domain's own refusals.
"""

from __future__ import annotations

from debtgraph.domain.core.errors import (
    DomainValidationError,
    ExpectedError,
    FieldError,
    InvalidTransition,
)

__all__ = [
    "Conflict",
    "DomainValidationError",
    "ExpectedError",
    "FieldError",
    "InputError",
    "InvalidTransition",
    "MissingScope",
    "NotFound",
    "OperatorOnly",
    "Throttled",
    "Unauthenticated",
    "UseCaseError",
]


# The name the faces caught before the one base; kept only so branches written against it merge.
UseCaseError = ExpectedError


class Unauthenticated(ExpectedError):
    """No valid credentials."""

    code = "unauthenticated"

    def __init__(self, message: str = "Unauthenticated.") -> None:
        super().__init__(message)


class NotFound(ExpectedError):
    """Absent, or outside the caller's reach (the two are never told apart)."""

    code = "not_found"

    def __init__(self, resource: str = "Resource", message: str | None = None) -> None:
        super().__init__(message or f"{resource} not found.")
        self.resource = resource


class OperatorOnly(Unauthenticated):
    """A known caller that is not an operator, on an operator-only operation.

    Unauthenticated on every face (PRODUCT-DECISIONS, issue 8 item 4): the operator API knows only
    operator tokens, and its seed answers any other token 401; GraphQL says UNAUTHENTICATED too,
    with a message that tells a signed-in platform why.
    """

    def __init__(self) -> None:
        super().__init__("Only operators may use this field.")


class MissingScope(ExpectedError):
    """The caller is known but its token lacks the scope this operation needs."""

    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"This operation requires the '{scope}' scope.")
        self.scope = scope


class InputError(DomainValidationError):
    """Invalid input detected by a use case (rendered 422 on /api, 400 on /v1)."""

    def __init__(self, errors: list[FieldError], message: str | None = None) -> None:
        super().__init__(errors)
        self.message = message or self.errors[0].message


class Conflict(ExpectedError):
    """The request cannot be applied to the current state (409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Throttled(ExpectedError):
    """Too many attempts; retry after the given seconds (429)."""

    code = "too_many_attempts"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(
            message or f"Too many login attempts. Please try again in {retry_after} seconds."
        )
        self.retry_after = retry_after
