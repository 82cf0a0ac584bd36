"""The IBAN blacklist: IBANs operators refuse to debit, stored in electronic form.

The list is read when debtors are validated (stage B); adding or removing an IBAN does not
re-validate stored debtors by itself — validating an upload or a debtor again applies it.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.banking.iban import is_valid_iban, normalize_iban
from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.concurrency import insert_unless_exists
from debtgraph.domain.core.errors import DomainValidationError, FieldError
from debtgraph.domain.debtors.models import BlacklistedIban

MAX_REASON = 500


def checked_iban(raw: object, field: str = "iban") -> str:
    """The IBAN in electronic form, or a validation error when it is blank or invalid."""
    if not isinstance(raw, str) or not normalize_iban(raw):
        raise DomainValidationError([FieldError(field, "required", "IBAN is required")])
    iban = normalize_iban(raw)
    if not is_valid_iban(iban):
        raise DomainValidationError([FieldError(field, "invalid", "IBAN is invalid")])
    return iban


async def find(session: AsyncSession, iban: str) -> BlacklistedIban | None:
    """The blacklist entry of a normalised IBAN, if any."""
    return await session.scalar(select(BlacklistedIban).where(BlacklistedIban.iban == iban))


async def add(
    session: AsyncSession,
    clock: Clock,
    raw_iban: object,
    reason: str | None = None,
    created_by: int | None = None,
) -> tuple[BlacklistedIban, bool]:
    """Blacklist an IBAN; adding one already listed returns its entry. Returns (entry, created)."""
    iban = checked_iban(raw_iban)
    if reason is not None and len(reason) > MAX_REASON:
        raise DomainValidationError(
            [FieldError("reason", "too_long", f"reason must be at most {MAX_REASON} characters.")]
        )
    # The unique IBAN decides, not a read first: of concurrent adds one inserts, the others
    # wait for it and then find its entry.
    created = await insert_unless_exists(
        session,
        BlacklistedIban,
        {
            "iban": iban,
            "reason": (reason or "").strip() or None,
            "created_by": created_by,
            "created_at": clock.now(),
        },
        ["iban"],
    )
    entry = await find(session, iban)
    assert entry is not None  # inserted now, or by the one that won the race
    return entry, created is not None


async def remove(session: AsyncSession, raw_iban: object) -> BlacklistedIban | None:
    """Take an IBAN off the blacklist; returns the removed entry, None when it was not listed."""
    if not isinstance(raw_iban, str) or not normalize_iban(raw_iban):
        raise DomainValidationError([FieldError("iban", "required", "IBAN is required")])
    entry = await find(session, normalize_iban(raw_iban))
    if entry is None:
        return None
    await session.execute(delete(BlacklistedIban).where(BlacklistedIban.id == entry.id))
    return entry
