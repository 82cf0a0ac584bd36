"""Creditor fields of ``User``, and the creditor mutations (create, suspend, reinstate)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from debtgraph.domain.creditors import changes as creditor_rules
from debtgraph.domain.creditors.models import Role
from debtgraph.domain.creditors.models import User as UserModel
from debtgraph.resolvers import creditors, receivables
from debtgraph.resolvers.pagination import check_first, decode_cursor
from debtgraph.schema.base import Connection, UserError, attempt, ctx_of, to_connection
from debtgraph.schema.receivables import (
    AddressInput,
    Receivable,
    ReceivableStatus,
    input_payload,
    public_id_of,
)

if TYPE_CHECKING:
    from debtgraph.schema.users import User


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
    first: int | None,
    after: str | None,
    status: ReceivableStatus | None,
) -> Connection[Receivable]:
    """A creditor's receivables within the caller's ``receivables:read`` reach, newest first."""
    page = await receivables.receivables_of_user(
        ctx_of(info),
        model.id,
        check_first(first),
        decode_cursor(after),
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
    date: str
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
    user: Annotated[User, strawberry.lazy("debtgraph.schema.users")] | None
    onboarding_url: str | None = strawberry.field(
        description="The hosted onboarding (or set-password) link; shown only here."
    )
    user_errors: list[UserError]


@strawberry.type
class UserStatusPayload:
    user: Annotated[User, strawberry.lazy("debtgraph.schema.users")] | None
    user_errors: list[UserError]


@strawberry.input
class UserIdInput:
    id: strawberry.ID


@strawberry.type
class CreditorMutation:
    @strawberry.mutation(description="Create a creditor (POST /v1/users).")
    async def user_create(self, info: Info, input: UserCreateInput) -> UserCreatePayload:
        from debtgraph.schema.users import User

        created, errors = await attempt(creditors.create_user(ctx_of(info), input_payload(input)))
        if created is None:
            return UserCreatePayload(user=None, onboarding_url=None, user_errors=errors)
        return UserCreatePayload(
            user=User.from_model(created.user),
            onboarding_url=created.onboarding_url,
            user_errors=[],
        )

    @strawberry.mutation(description="Operators: suspend a creditor.")
    async def user_suspend(self, info: Info, input: UserIdInput) -> UserStatusPayload:
        from debtgraph.schema.users import User

        model, errors = await attempt(
            creditors.set_suspended(ctx_of(info), public_id_of(input.id, "User"), suspended=True)
        )
        return UserStatusPayload(user=User.from_model(model) if model else None, user_errors=errors)

    @strawberry.mutation(description="Operators: reinstate a suspended creditor.")
    async def user_reinstate(self, info: Info, input: UserIdInput) -> UserStatusPayload:
        from debtgraph.schema.users import User

        model, errors = await attempt(
            creditors.set_suspended(ctx_of(info), public_id_of(input.id, "User"), suspended=False)
        )
        return UserStatusPayload(user=User.from_model(model) if model else None, user_errors=errors)
