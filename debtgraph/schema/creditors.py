"""The User node (operators and creditors), ``me``, operator login, and the creditor mutations."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from debtgraph.domain.creditors import changes as creditor_rules
from debtgraph.domain.creditors.models import Role
from debtgraph.domain.creditors.models import User as UserModel
from debtgraph.resolvers import auth, creditors, extraction, receivables, webhooks
from debtgraph.resolvers.loaders import Window
from debtgraph.resolvers.pagination import check_window
from debtgraph.schema.base import (
    Connection,
    UserError,
    attempt,
    ctx_of,
    id_ref,
    nodes_in_order,
    object_id,
    schema_type,
    to_connection,
)
from debtgraph.schema.live import nodes
from debtgraph.schema.receivables import (
    AddressInput,
    Receivable,
    ReceivableStatus,
)


@strawberry.type(name="User", description="An operator (role admin) or a creditor company.")
class User(relay.Node):
    id: relay.NodeID[str]
    database_id: int = strawberry.field(description="The numeric id the Tether REST API shows.")
    email: str
    name: str
    role: str
    status: str
    created_at: datetime
    kyb_status: str | None = strawberry.field(
        description="Creditors: unverified, pending, verified or rejected."
    )
    company_name: str | None
    model: strawberry.Private[UserModel]

    @classmethod
    def from_model(cls, model: UserModel) -> User:
        """Shape a user row."""
        creditor = model.role == "creditor"
        return cls(
            id=model.public_id,
            database_id=model.id,
            email=model.email,
            name=model.name,
            role=model.role,
            status=model.status,
            created_at=model.created_at,
            kyb_status=model.kyb_status if creditor else None,
            company_name=model.company_name,
            model=model,
        )

    @strawberry.field(description="Creditors: what they may do now.")
    def capabilities(self) -> Capabilities | None:
        return capabilities_of(self.model)

    @strawberry.field(description="Creditors: missing onboarding items.")
    def requirements(self, info: Info) -> Requirements | None:
        return requirements_of(info, self.model)

    @strawberry.field(description="Creditors: payout account status (none, pending, enabled).")
    def stripe_account_status(self) -> str | None:
        return (
            creditor_rules.payout_status_of(self.model) if self.model.role == "creditor" else None
        )

    @strawberry.field(description="Creditors: their receivables, newest first.")
    async def receivables(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        status: ReceivableStatus | None = None,
    ) -> Connection[Receivable]:
        return await receivables_of(
            info, self.model, check_window(first, after, last, before), status
        )

    # Webhook and ExtractionResult are named lazily and built through the schema: their modules
    # import this one (Webhook.user, ExtractionResult.user).
    @strawberry.field(
        description="Creditors: the webhooks their OAuth tokens registered, oldest first."
    )
    async def webhooks(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Annotated[Webhook, strawberry.lazy("debtgraph.schema.webhooks")]]:  # noqa: F821
        window = check_window(first, after, last, before, oldest_first=True)
        page = await webhooks.webhooks_of_user(ctx_of(info), self.model.id, window)
        return to_connection(page, schema_type(info, "Webhook").from_model)

    @strawberry.field(description="Creditors: invoices read for them from PDFs, newest first.")
    async def extraction_results(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[
        Annotated[ExtractionResult, strawberry.lazy("debtgraph.schema.extraction")]  # noqa: F821
    ]:
        window = check_window(first, after, last, before)
        page = await extraction.results_of_user(ctx_of(info), self.model.id, window)
        return to_connection(page, schema_type(info, "ExtractionResult").from_model)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[User | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: creditors.visible_users_by_public_id(ctx, ids), cls.from_model
        )


@strawberry.type
class LoginPayload:
    token: str | None = strawberry.field(description="Shown once: `{id}|{secret}`.")
    user: User | None
    user_errors: list[UserError]


@strawberry.type
class LogoutPayload:
    ok: bool
    user_errors: list[UserError]


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.type
class UserQuery:
    @strawberry.field(description="The signed-in operator or creditor (null for a platform key).")
    async def me(self, info: Info) -> User | None:
        model = await auth.me(ctx_of(info))
        return User.from_model(model) if model else None

    @strawberry.field(description="One creditor by its id or REST id (GET /v1/users/{id}).")
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        return User.from_model(await creditors.get_user(ctx_of(info), object_id(id, "User")))


@strawberry.type
class UserMutation:
    @strawberry.mutation(
        description="Operator sign-in; same rules and throttle as POST /api/login."
    )
    async def login(self, info: Info, input: LoginInput) -> LoginPayload:
        result, errors = await attempt(auth.login(ctx_of(info), input.email, input.password))
        if result is None:
            return LoginPayload(token=None, user=None, user_errors=errors)
        return LoginPayload(token=result.token, user=User.from_model(result.user), user_errors=[])

    @strawberry.mutation(description="Revoke the operator token this request came with.")
    async def logout(self, info: Info) -> LogoutPayload:
        _, errors = await attempt(auth.logout(ctx_of(info)))
        return LogoutPayload(ok=not errors, user_errors=errors)


@strawberry.type(description="What a creditor may do.")
class Capabilities:
    send_receivables: bool
    receive_payments: bool


@strawberry.type(description="Missing onboarding items by urgency.")
class Requirements:
    currently_due: list[str]
    eventually_due: list[str]
    past_due: list[str]


def capabilities_of(model: UserModel) -> Capabilities | None:
    """A creditor's capabilities (None for operators)."""
    if model.role != Role.CREDITOR:
        return None
    caps = creditor_rules.capabilities_of(model)
    return Capabilities(
        send_receivables=caps.send_receivables, receive_payments=caps.receive_payments
    )


def requirements_of(info: Info, model: UserModel) -> Requirements | None:
    """A creditor's requirements now (None for operators)."""
    if model.role != Role.CREDITOR:
        return None
    reqs = creditor_rules.requirements_of(model, ctx_of(info).clock.now())
    return Requirements(
        currently_due=list(reqs.currently_due),
        eventually_due=list(reqs.eventually_due),
        past_due=list(reqs.past_due),
    )


async def receivables_of(
    info: Info,
    model: UserModel,
    window: Window,
    status: ReceivableStatus | None,
) -> Connection[Receivable]:
    """A creditor's receivables within the caller's ``receivables:read`` reach, newest first."""
    page = await receivables.receivables_of_user(
        ctx_of(info),
        model.id,
        window,
        status.value if status else None,
    )
    return to_connection(page, Receivable.from_model)


@strawberry.input
class UserContactInput:
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    job_title: str | None = None


@strawberry.input
class CompanyInput:
    name: str | None = None
    siret: str | None = None
    vat_number: str | None = None
    address: AddressInput | None = None
    website: str | None = None
    phone: str | None = None


@strawberry.input
class TosAcceptanceInput:
    date: datetime
    ip: str


@strawberry.input
class PlatformInfoInput:
    callback_url: str | None = None
    metadata: JSON | None = None


@strawberry.input(description="Same fields and rules as POST /v1/users.")
class UserCreateInput:
    email: str
    company: CompanyInput | None = None
    contact: UserContactInput | None = None
    platform: PlatformInfoInput | None = None
    tos_acceptance: TosAcceptanceInput | None = None


@strawberry.type
class UserCreatePayload:
    user: User | None
    onboarding_url: str | None = strawberry.field(
        description="The hosted onboarding (or set-password) link; shown only here."
    )
    user_errors: list[UserError]


@strawberry.type
class UserStatusPayload:
    user: User | None
    user_errors: list[UserError]


@strawberry.input
class UserIdInput:
    id: strawberry.ID


@strawberry.type
class CreditorMutation:
    @strawberry.mutation(description="Create a creditor (POST /v1/users).")
    async def user_create(self, info: Info, input: UserCreateInput) -> UserCreatePayload:
        created, errors = await attempt(creditors.create_user(ctx_of(info), input))
        if created is None:
            return UserCreatePayload(user=None, onboarding_url=None, user_errors=errors)
        return UserCreatePayload(
            user=User.from_model(created.user),
            onboarding_url=created.onboarding_url,
            user_errors=[],
        )

    @strawberry.mutation(description="Operators: suspend a creditor.")
    async def user_suspend(self, info: Info, input: UserIdInput) -> UserStatusPayload:
        model, errors = await attempt(
            creditors.set_suspended(ctx_of(info), id_ref(input.id, "User"), suspended=True)
        )
        return UserStatusPayload(user=User.from_model(model) if model else None, user_errors=errors)

    @strawberry.mutation(description="Operators: reinstate a suspended creditor.")
    async def user_reinstate(self, info: Info, input: UserIdInput) -> UserStatusPayload:
        model, errors = await attempt(
            creditors.set_suspended(ctx_of(info), id_ref(input.id, "User"), suspended=False)
        )
        return UserStatusPayload(user=User.from_model(model) if model else None, user_errors=errors)


@strawberry.type
class PlatformDisconnectPayload:
    # Not the user: the caller's reach over it may just have ended, or never included reading
    # it (a grant of receivables:read alone); the caller knows which id it disconnected.
    disconnected: bool
    user_errors: list[UserError]


@strawberry.type
class ConnectionMutation:
    @strawberry.mutation(
        description="End every OAuth grant a creditor gave a platform (its tokens, unused codes "
        "and consent), at once on every face: with the platform's API key, for a creditor it "
        "created or that connected to it, or with the creditor's own token, for that token's "
        "platform; no scope needed. A creditor the platform created stays in its reach."
    )
    async def platform_disconnect(
        self, info: Info, input: UserIdInput
    ) -> PlatformDisconnectPayload:
        model, errors = await attempt(
            creditors.disconnect_platform(ctx_of(info), id_ref(input.id, "User"))
        )
        return PlatformDisconnectPayload(disconnected=model is not None, user_errors=errors)


@strawberry.type
class UserSubscription:
    @strawberry.subscription(
        description="Creditor users in reach whose data changed (users:read), as they are "
        "after the change; only one user when an id is given."
    )
    async def user_updated(
        self, info: Info, user_id: strawberry.ID | None = None
    ) -> AsyncGenerator[User, None]:
        source = creditors.watch_users(
            ctx_of(info), user_id=object_id(user_id, "User") if user_id else None
        )
        async for node in nodes(source, User.from_model):
            yield node
