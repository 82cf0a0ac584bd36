"""Creditor (and operator) users: create (platforms), read within reach, onboarding, suspension."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select

from debtgraph.domain.core.concurrency import lock_row
from debtgraph.domain.core.errors import DomainValidationError
from debtgraph.domain.core.eventbus import BusMessage
from debtgraph.domain.creditors import changes as creditors
from debtgraph.domain.creditors import identity_documents
from debtgraph.domain.creditors.models import Role, User
from debtgraph.domain.creditors.requirements import Requirements
from debtgraph.domain.oauth import grants as oauth_flow
from debtgraph.resolvers import events
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import Conflict, NotFound
from debtgraph.resolvers.pagination import IdRef, read_id
from debtgraph.resolvers.permissions import (
    USERS_READ,
    USERS_WRITE,
    note_reach,
    require_operator,
    require_principal,
    require_scope,
    user_reach,
)
from debtgraph.resolvers.principal import Principal, PrincipalKind

# The hosted onboarding form around its file: headers, boundaries and a score of small fields.
MULTIPART_OVERHEAD = 64 * 1024


def onboarding_url(ctx: Context, token: str) -> str:
    """The absolute URL of the hosted onboarding (or set-password) page for a token."""
    return f"{ctx.public_base_url}/onboarding/{token}"


@dataclass(frozen=True, slots=True)
class CreatedUser:
    """A creditor just created, with its onboarding URL (shown only now)."""

    user: User
    onboarding_url: str


async def create_user(ctx: Context, payload: Any) -> CreatedUser:
    """``POST /v1/users``: a platform (or an operator) creates a creditor."""
    principal = require_scope(ctx, USERS_WRITE)
    if principal.kind is PrincipalKind.CREDITOR:
        # Creditors never create other creditors; hide the operation like any other out of reach.
        raise NotFound("Resource")
    async with ctx.uow.session() as session:
        created = await creditors.create_creditor(
            session, ctx.clock, payload, platform_id=principal.platform_id
        )
    await ctx.uow.commit()
    return CreatedUser(created.user, onboarding_url(ctx, created.onboarding_token))


async def get_user(ctx: Context, user_id: IdRef, scope: str = USERS_READ) -> User:
    """A creditor within the caller's reach, else NotFound."""
    principal = require_scope(ctx, scope)
    user_id = read_id(user_id)
    async with ctx.uow.session() as session:
        user = await session.scalar(
            select(User).where(
                User.public_id == user_id,
                User.role == Role.CREDITOR.value,
                user_visible_condition(principal, scope, ctx.clock.now()),
            )
        )
    if user is None:
        raise NotFound("User")
    note_reach(ctx, "User", user.id, scope)
    return user


def requirements(ctx: Context, user: User) -> Requirements:
    """The creditor's missing onboarding items, now."""
    return creditors.requirements_of(user, ctx.clock.now())


async def onboarding_user(ctx: Context, token: str) -> User | None:
    """The creditor behind an unspent onboarding token (the hosted page needs no sign-in)."""
    async with ctx.uow.session() as session:
        return await creditors.user_by_onboarding_token(session, token)


def identity_document_limit(ctx: Context) -> int:
    """The largest representative's identity document accepted, in bytes."""
    return identity_documents.max_bytes(ctx.settings.max_upload_bytes)


def onboarding_request_limit(ctx: Context) -> int:
    """The most bytes a hosted onboarding form may carry: its document plus multipart framing."""
    return identity_document_limit(ctx) + MULTIPART_OVERHEAD


def identity_document_too_large(ctx: Context) -> DomainValidationError:
    """The refusal of a form whose body is over :func:`onboarding_request_limit`."""
    return identity_documents.too_large(identity_document_limit(ctx))


async def onboarding_caller(ctx: Context, token: str) -> User | None:
    """The creditor behind an unspent token, looked up before the form's body is read.

    The connection goes back to the pool at once: none is held while the browser sends a file.
    """
    user = await onboarding_user(ctx, token)
    await ctx.uow.close()
    return user


async def submit_onboarding(
    ctx: Context, token: str, form: Mapping[str, str], document: Any = None
) -> User:
    """Save the hosted onboarding form (and its identity document, if it carries one).

    NotFound when the token is unknown or spent; nothing is stored then, nor when the form is
    refused.
    """
    user = await onboarding_user(ctx, token)
    if user is None:
        raise NotFound("Onboarding link")
    # Reading the document, hashing and copying take a while: hold no pool connection meanwhile.
    await ctx.uow.close()
    limit = identity_document_limit(ctx)
    validated = await asyncio.to_thread(
        creditors.validate_onboarding_form,
        user,
        form,
        now=ctx.clock.now(),
        client_ip=ctx.client_ip,
        document=document,
        document_limit=limit,
    )
    # argon2 is CPU-bound by design: keep it off the event loop.
    password_hash = await asyncio.to_thread(creditors.new_password_hash, validated.password)
    upload_dir = ctx.settings.upload_dir
    reference: str | None = None
    if validated.identity_document is not None:
        reference = await asyncio.to_thread(
            identity_documents.store,
            document.file,
            validated.identity_document,
            upload_dir,
            limit=limit,
        )
    try:
        async with ctx.uow.session() as session:
            # The token is spent by the same transaction that saves the form, and only by one
            # of concurrent submissions: the read above is no guarantee that it is still unspent.
            saved = await creditors.complete_onboarding(
                session, ctx.clock, token, validated, password_hash, identity_document=reference
            )
        if saved is None:
            raise NotFound("Onboarding link")
        await ctx.uow.commit()
    except BaseException:
        # Only a committed row may point at a stored document: no orphan stays behind.
        identity_documents.remove(upload_dir, reference)
        raise
    return saved


async def set_suspended(ctx: Context, user_id: IdRef, *, suspended: bool) -> User:
    """Operators suspend a creditor or reinstate it.

    Suspension revokes every OAuth token and unspent code of the creditor in the same
    transaction, so reinstating it revives none of them (PRODUCT.md §1).
    """
    require_operator(ctx)
    user = await get_user(ctx, user_id)
    async with ctx.uow.session() as session:
        # Held to commit, and the row read again under it: a concurrent suspension that
        # committed first is seen (its change not recorded twice).
        await lock_row(session, User, user.id)
        await session.refresh(user)
        await creditors.set_suspended(session, ctx.clock, user, suspended=suspended)
        if suspended:
            await oauth_flow.revoke_user_grants(session, ctx.clock, user.id)
    await ctx.uow.commit()
    return user


async def disconnect_platform(ctx: Context, user_id: IdRef) -> User:
    """A creditor's OAuth grants to a platform end (PRODUCT.md §1: "disconnecting ends it at
    once, on every face"): its tokens, unused codes and consent record.

    The platform with its API key disconnects a creditor it created or that connected to it;
    a creditor's token disconnects its own creditor from that token's platform. Neither needs a
    scope: each drops a consent it holds or gave (a platform granted receivables:read alone may
    not even read the user). Operators hold no platform: they suspend the creditor.
    """
    principal = require_principal(ctx)
    if principal.is_operator or principal.platform_id is None:
        raise Conflict(
            "platform_required",
            "A platform is disconnected by its API key or by the creditor's own OAuth token; "
            "operators suspend the creditor instead.",
        )
    public_id = read_id(user_id)
    async with ctx.uow.session() as session:
        if principal.kind is PrincipalKind.CREDITOR:
            user = await session.get(User, principal.user_id)
        else:
            user = await session.scalar(
                select(User).where(
                    User.public_id == public_id,
                    User.role == Role.CREDITOR.value,
                    User.deleted_at.is_(None),
                    oauth_flow.connected_to(principal.platform_id),
                )
            )
    if user is None or user.public_id != public_id:
        raise NotFound("User")
    async with ctx.uow.session() as session:
        await oauth_flow.disconnect(session, ctx.clock, principal.platform_id, user.id)
    await ctx.uow.commit()
    return user


def user_visible_condition(principal: Principal, scope: str, now: datetime) -> ColumnElement[bool]:
    """SQL condition for the users over whom a caller may use ``scope`` (PRODUCT.md §1)."""
    return user_reach(principal, scope, now)


async def visible_users_by_public_id(ctx: Context, public_ids: Iterable[str]) -> dict[str, User]:
    """Users among ``public_ids`` that the caller may read, keyed by public id."""
    principal = ctx.principal
    ids = list(public_ids)
    if principal is None or not ids or not principal.has_scope(USERS_READ):
        return {}
    condition = user_visible_condition(principal, USERS_READ, ctx.clock.now())
    async with ctx.uow.session() as session:
        rows = (await session.scalars(select(User).where(User.public_id.in_(ids), condition))).all()
    return {u.public_id: u for u in rows}


async def readable_user(ctx: Context, user_id: int) -> User | None:
    """A user by database id if the caller may read it (``users:read``), batched per request.

    MissingScope when the caller lacks ``users:read`` altogether; None when the user is out of
    that scope's reach.
    """
    principal = require_scope(ctx, USERS_READ)
    now = ctx.clock.now()

    async def batch(keys: Sequence[int]) -> list[User | None]:
        condition = user_visible_condition(principal, USERS_READ, now)
        async with ctx.uow.session() as session:
            rows = (await session.scalars(select(User).where(User.id.in_(keys), condition))).all()
        found = {u.id: u for u in rows}
        return [found.get(k) for k in keys]

    return await ctx.loaders.custom("readable_users", batch).load(user_id)


async def _load_user(ctx: Context, message: BusMessage) -> User | None:
    return (await visible_users_by_public_id(ctx, [message.object_id])).get(message.object_id)


async def watch_users(ctx: Context, *, user_id: str | None = None) -> AsyncIterator[User]:
    """Each creditor user in the caller's reach after its data changes (``users:read``);
    only the one ``user_id`` (public id) names when given."""
    require_scope(ctx, USERS_READ)
    topic = events.Topic(
        "user",
        frozenset({"user.updated"}),
        _load_user,
        (lambda m: m.object_id == user_id) if user_id is not None else (lambda _m: True),
    )
    async for model in events.stream(ctx, topic):
        yield model
