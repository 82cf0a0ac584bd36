"""The User node (operators and creditors), ``me``, and operator login/logout."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from debtgraph.domain.creditors.models import User as UserModel
from debtgraph.resolvers import auth, users
from debtgraph.schema.base import Connection, UserError, attempt, ctx_of, nodes_in_order

if TYPE_CHECKING:
    from debtgraph.schema.creditors import Capabilities, Requirements
    from debtgraph.schema.receivables import Receivable, ReceivableStatus

_CREDITORS = "debtgraph.schema.creditors"
_RECEIVABLES = "debtgraph.schema.receivables"


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
    def capabilities(self) -> Annotated[Capabilities, strawberry.lazy(_CREDITORS)] | None:
        from debtgraph.schema.creditors import capabilities_of

        return capabilities_of(self.model)

    @strawberry.field(description="Creditors: missing onboarding items.")
    def requirements(
        self, info: Info
    ) -> Annotated[Requirements, strawberry.lazy(_CREDITORS)] | None:
        from debtgraph.schema.creditors import requirements_of

        return requirements_of(info, self.model)

    @strawberry.field(description="Creditors: payout account status (none, pending, enabled).")
    def stripe_account_status(self) -> str | None:
        from debtgraph.domain.creditors.changes import payout_status_of

        return payout_status_of(self.model) if self.model.role == "creditor" else None

    @strawberry.field(description="Creditors: their receivables, newest first.")
    async def receivables(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: Annotated[ReceivableStatus, strawberry.lazy(_RECEIVABLES)] | None = None,
    ) -> Connection[Annotated[Receivable, strawberry.lazy(_RECEIVABLES)]]:
        from debtgraph.schema.creditors import receivables_of

        return await receivables_of(info, self.model, first, after, status)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[User | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: users.visible_users_by_public_id(ctx, ids), cls.from_model
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
