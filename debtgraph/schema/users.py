"""The User node (operators and creditors), ``me``, and operator login/logout."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from debtgraph.domain.users import User as UserModel
from debtgraph.resolvers import auth, users
from debtgraph.schema.base import UserError, attempt, ctx_of


@strawberry.type(name="User", description="An operator (role admin) or a creditor company.")
class User(relay.Node):
    id: relay.NodeID[str]
    database_id: int = strawberry.field(description="The numeric id the Tether REST API shows.")
    email: str
    name: str
    role: str
    status: str
    created_at: datetime

    @classmethod
    def from_model(cls, model: UserModel) -> User:
        """Shape a user row."""
        return cls(
            id=model.public_id,
            database_id=model.id,
            email=model.email,
            name=model.name,
            role=model.role,
            status=model.status,
            created_at=model.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[User | None]:
        ids = list(node_ids)
        found = await users.visible_users_by_public_id(ctx_of(info), ids)
        return [cls.from_model(found[i]) if i in found else None for i in ids]


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
