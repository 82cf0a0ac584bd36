"""Creditor services (PRODUCT.md §2): creation by a platform, hosted onboarding, status changes.

Decisions:

- A creditor's email is unique across the service (it is the sign-in name on the consent page), so
  a second ``POST /v1/users`` with the same email is refused with ``email_taken`` (the unique
  constraint decides, so concurrent creations with one email get one user).
- The one-time token behind ``onboarding_url`` never expires but works once: it is spent when the
  hosted form is saved successfully (a refused form leaves it unspent; of concurrent
  submissions one is saved). Only its hash is kept, so the URL is shown at creation only.
- The hosted page requires every ``currently_due`` item and a password (at least 10 characters);
  the IBAN is optional there (``eventually_due``). For a user created complete, the same URL only
  asks for the password (the "set-password link").
- The representative's identity document (``eventually_due`` too) is optional on both forms; it is
  judged with the other fields (``identity_documents``), so one answer lists every problem, and
  stored only once the whole form is valid.
- Every change of ``status``, ``kyb_status`` or the capabilities raises ``user.updated`` with the
  previous values in ``previous_attributes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.banking.iban import is_valid_iban, normalize_iban
from debtgraph.domain.core import outbox
from debtgraph.domain.core.clock import Clock, event_time
from debtgraph.domain.core.concurrency import flush_refusing_duplicates
from debtgraph.domain.core.errors import (
    INVALID_CHARACTER,
    NUL_MESSAGE,
    DomainValidationError,
    FieldError,
)
from debtgraph.domain.core.secrets import hash_password, hash_token, public_id, random_string
from debtgraph.domain.creditors import identity_documents
from debtgraph.domain.creditors.identity_documents import DocumentKind
from debtgraph.domain.creditors.models import Role, User, UserStatus, display_name
from debtgraph.domain.creditors.parsing import UserDraft, validate_user_payload
from debtgraph.domain.creditors.requirements import (
    Capabilities,
    OnboardingSnapshot,
    Requirements,
    capabilities,
    compute_requirements,
    kyb_status,
    payout_account_status,
    reinstate_status,
    user_status,
)

MIN_PASSWORD_LENGTH = 10


def snapshot_of(user: User, now: datetime) -> OnboardingSnapshot:
    """What is on file for a creditor, as the onboarding rules read it."""
    return OnboardingSnapshot(
        created_at=user.created_at,
        now=now,
        company_name=user.company_name,
        company_siret=user.company_siret,
        company_vat_number=user.company_vat_number,
        company_address=user.company_address,
        contact_first_name=user.contact_first_name,
        contact_last_name=user.contact_last_name,
        tos_accepted_at=user.tos_accepted_at,
        bank_iban=user.bank_iban,
        representative_identity_document=user.representative_document,
    )


def requirements_of(user: User, now: datetime) -> Requirements:
    """The creditor's missing onboarding items."""
    return compute_requirements(snapshot_of(user, now))


def capabilities_of(user: User) -> Capabilities:
    """What the creditor may do now."""
    return capabilities(user.status, bool(user.bank_iban))


def payout_status_of(user: User) -> str:
    """The ``stripe_account_status`` of the creditor's payout account."""
    return payout_account_status(
        user.status, bool(user.bank_iban), bool(user.representative_document)
    )


def _event_object(user: User) -> dict[str, Any]:
    """The creditor as ``user.*`` events carry it (the Cleavr ``User`` fields)."""
    return {
        "id": user.public_id,
        "email": user.email,
        "status": user.status,
        "capabilities": capabilities_of(user).as_dict(),
        "created_at": event_time(user.created_at),
    }


def _tracked(user: User) -> dict[str, Any]:
    return {
        "status": user.status,
        "kyb_status": user.kyb_status,
        "capabilities": capabilities_of(user).as_dict(),
    }


def _refresh_status(
    session: AsyncSession, clock: Clock, user: User, before: dict[str, Any]
) -> None:
    """Recompute KYB and status; raise ``user.updated`` when anything visible changed."""
    now = clock.now()
    user.kyb_status = kyb_status(user.company_siret, user.company_vat_number).value
    user.status = user_status(user.status, snapshot_of(user, now)).value
    user.updated_at = now
    after = _tracked(user)
    changed = {k: v for k, v in before.items() if after[k] != v}
    if changed:
        _record_user_updated(session, clock, user, changed)


def _record_user_updated(
    session: AsyncSession, clock: Clock, user: User, previous: dict[str, Any]
) -> None:
    obj = _event_object(user)
    outbox.record_event(
        session,
        clock,
        type="user.updated",
        object_type="user",
        object_id=user.public_id,
        obj={**obj, "kyb_status": user.kyb_status},
        previous=previous,
        platform_id=user.platform_id,
        user_id=user.id,
    )


@dataclass(frozen=True, slots=True)
class CreatedCreditor:
    """A new creditor and the one-time token of its onboarding (or set-password) link."""

    user: User
    onboarding_token: str


async def create_creditor(
    session: AsyncSession, clock: Clock, payload: Mapping[str, Any], *, platform_id: int | None
) -> CreatedCreditor:
    """Validate a ``CreateUserRequest`` and create the creditor for ``platform_id``."""
    now = clock.now()
    draft: UserDraft = validate_user_payload(payload, now=now)
    token = random_string(40)
    company, contact = draft.company, draft.contact
    user = User(
        public_id=public_id("usr"),
        role=Role.CREDITOR.value,
        email=draft.email,
        name=display_name(company.name, draft.email),
        status=UserStatus.PENDING_ONBOARDING.value,
        platform_id=platform_id,
        company_name=company.name,
        company_siret=company.siret,
        company_vat_number=company.vat_number,
        company_address=company.address.as_dict() if company.address else None,
        company_website=company.website,
        company_phone=company.phone,
        contact_first_name=contact.first_name,
        contact_last_name=contact.last_name,
        contact_phone=contact.phone,
        contact_job_title=contact.job_title,
        tos_accepted_at=draft.tos_acceptance.date if draft.tos_acceptance else None,
        tos_acceptance_ip=draft.tos_acceptance.ip if draft.tos_acceptance else None,
        callback_url=draft.platform.callback_url,
        platform_metadata=dict(draft.platform.metadata),
        onboarding_token_hash=hash_token(token),
        created_at=now,
        updated_at=now,
    )
    user.kyb_status = kyb_status(user.company_siret, user.company_vat_number).value
    user.status = user_status(user.status, snapshot_of(user, now)).value
    if user.status == UserStatus.ONBOARDING:
        user.onboarding_started_on = now.date()
    session.add(user)
    # A taken email is refused by the unique constraint, as email_taken (models.EMAIL_TAKEN).
    await flush_refusing_duplicates(session)
    return CreatedCreditor(user=user, onboarding_token=token)


def _unspent_token(token: str) -> list[ColumnElement[bool]]:
    return [
        User.onboarding_token_hash == hash_token(token),
        User.onboarding_token_used_at.is_(None),
        User.deleted_at.is_(None),
        User.role == Role.CREDITOR.value,
    ]


async def user_by_onboarding_token(session: AsyncSession, token: str) -> User | None:
    """The creditor whose unspent onboarding token this is, or None."""
    if not token:
        return None
    return await session.scalar(select(User).where(*_unspent_token(token)))


async def spend_onboarding_token(session: AsyncSession, clock: Clock, token: str) -> User | None:
    """Mark the token used and give its creditor, freshly read; None when it is already spent.

    One conditional ``UPDATE … RETURNING``: of concurrent submissions exactly one gets the row,
    which stays locked until the commit; the others find the token spent.
    """
    if not token:
        return None
    spent = await session.scalars(
        update(User)
        .where(*_unspent_token(token))
        .values(onboarding_token_used_at=clock.now())
        .returning(User)
        .execution_options(populate_existing=True)
    )
    return spent.one_or_none()


def profile_complete(user: User, now: datetime) -> bool:
    """Whether nothing ``currently_due`` is missing (the page then only sets a password)."""
    return not requirements_of(user, now).currently_due


@dataclass(frozen=True, slots=True)
class OnboardingForm:
    """The hosted onboarding form, validated."""

    draft: UserDraft | None
    iban: str | None
    password: str
    # The type the submitted identity document was found to be; None when none was chosen.
    identity_document: DocumentKind | None = None


def _password(form: Mapping[str, str], errors: list[FieldError]) -> str:
    password = form.get("password") or ""
    if "\x00" in password:
        # Refused as in every other field (PRODUCT.md §12): no sign-in form nor JSON body takes
        # it, so a password holding it could never be typed back.
        errors.append(FieldError("password", INVALID_CHARACTER, NUL_MESSAGE))
    elif len(password) < MIN_PASSWORD_LENGTH:
        errors.append(
            FieldError(
                "password",
                "too_short",
                f"The password must be at least {MIN_PASSWORD_LENGTH} characters.",
            )
        )
    elif password != (form.get("password_confirmation") or ""):
        errors.append(FieldError("password_confirmation", "mismatch", "Passwords do not match."))
    return password


def _identity_document(
    document: identity_documents.SubmittedFile | str | None,
    limit: int,
    errors: list[FieldError],
) -> DocumentKind | None:
    try:
        return identity_documents.examine(document, limit=limit)
    except DomainValidationError as exc:
        errors.extend(exc.errors)
        return None


def validate_onboarding_form(
    user: User,
    form: Mapping[str, str],
    *,
    now: datetime,
    client_ip: str,
    document: identity_documents.SubmittedFile | str | None = None,
    document_limit: int = identity_documents.MAX_BYTES,
) -> OnboardingForm:
    """Validate the hosted page's fields; dotted field paths name the form inputs.

    Blocking when a document is given (its first bytes are read): call it in a worker thread.
    """
    errors: list[FieldError] = []
    if profile_complete(user, now):
        password = _password(form, errors)
        kind = _identity_document(document, document_limit, errors)
        if errors:
            raise DomainValidationError(errors)
        return OnboardingForm(draft=None, iban=None, password=password, identity_document=kind)

    def text(name: str) -> str | None:
        value = (form.get(name) or "").strip()
        return value or None

    payload: dict[str, Any] = {
        "email": user.email,
        "company": {
            "name": text("company.name"),
            "siret": text("company.siret"),
            "vat_number": text("company.vat_number"),
            "address": {
                "line1": text("company.address.line1"),
                "line2": text("company.address.line2"),
                "city": text("company.address.city"),
                "postal_code": text("company.address.postal_code"),
                "country": text("company.address.country") or "FR",
            },
            "phone": text("company.phone"),
        },
        "contact": {
            "first_name": text("contact.first_name"),
            "last_name": text("contact.last_name"),
            "phone": text("contact.phone"),
            "job_title": text("contact.job_title"),
        },
    }
    if form.get("tos_acceptance") == "accepted":
        payload["tos_acceptance"] = {"date": now, "ip": client_ip or "0.0.0.0"}  # noqa: S104
    draft: UserDraft | None = None
    try:
        draft = validate_user_payload(payload, now=now)
    except DomainValidationError as exc:
        errors.extend(exc.errors)
    required = {
        "company.name": "The company name is required.",
        "company.siret": "The SIRET is required.",
        "company.address.line1": "The address is required.",
        "company.address.city": "The city is required.",
        "company.address.postal_code": "The postal code is required.",
        "contact.first_name": "Your first name is required.",
        "contact.last_name": "Your last name is required.",
    }
    known = {e.field for e in errors}
    for name, message in required.items():
        if text(name) is None and name not in known:
            errors.append(FieldError(name, "required", message))
    if "tos_acceptance" not in payload:
        errors.append(
            FieldError("tos_acceptance", "required", "You must accept the terms of service.")
        )
    iban = text("bank_account.iban")
    if iban is not None:
        if is_valid_iban(iban):
            iban = normalize_iban(iban)
        else:
            errors.append(FieldError("bank_account.iban", "invalid_iban", "The IBAN is invalid."))
    kind = _identity_document(document, document_limit, errors)
    password = _password(form, errors)
    if errors:
        raise DomainValidationError(errors)
    return OnboardingForm(draft=draft, iban=iban, password=password, identity_document=kind)


async def complete_onboarding(
    session: AsyncSession,
    clock: Clock,
    token: str,
    form: OnboardingForm,
    password_hash: str,
    *,
    identity_document: str | None = None,
) -> User | None:
    """Spend the token, save the validated hosted form and recompute the creditor's status.

    ``identity_document`` is the reference of the document the form carried, stored already.
    None, with nothing changed, when the token was spent already (maybe a moment ago by a
    concurrent submission of the same form).
    """
    user = await spend_onboarding_token(session, clock, token)
    if user is None:
        return None
    before = _tracked(user)
    now = clock.now()
    if form.draft is not None:
        company, contact, tos = form.draft.company, form.draft.contact, form.draft.tos_acceptance
        user.company_name = company.name
        user.name = display_name(company.name, user.email)
        user.company_siret = company.siret
        user.company_vat_number = company.vat_number
        user.company_address = company.address.as_dict() if company.address else None
        user.company_phone = company.phone or user.company_phone
        user.contact_first_name = contact.first_name
        user.contact_last_name = contact.last_name
        user.contact_phone = contact.phone or user.contact_phone
        user.contact_job_title = contact.job_title or user.contact_job_title
        if tos is not None:
            user.tos_accepted_at = tos.date
            user.tos_acceptance_ip = tos.ip
        if user.onboarding_started_on is None:
            user.onboarding_started_on = now.date()
    if form.iban is not None:
        user.bank_iban = form.iban
    if identity_document is not None:
        user.representative_document = identity_document
    user.password_hash = password_hash
    _refresh_status(session, clock, user, before)
    await session.flush()
    return user


def new_password_hash(password: str) -> str:
    """Argon2 hash of a creditor password (CPU-bound: callers run it off the event loop)."""
    return hash_password(password)


async def set_suspended(
    session: AsyncSession, clock: Clock, user: User, *, suspended: bool
) -> User:
    """Suspend a creditor, or reinstate one to the status its data gives it (operators only)."""
    before = _tracked(user)
    if suspended:
        user.status = UserStatus.SUSPENDED.value
    elif user.status == UserStatus.SUSPENDED:
        user.status = reinstate_status(snapshot_of(user, clock.now())).value
    user.updated_at = clock.now()
    after = _tracked(user)
    changed = {k: v for k, v in before.items() if after[k] != v}
    if changed:
        _record_user_updated(session, clock, user, changed)
    await session.flush()
    return user
