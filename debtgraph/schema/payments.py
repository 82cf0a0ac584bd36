"""The payments area's enumerations (exposed once, used on inputs and outputs) and shared edges."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, get_args

import strawberry
from strawberry.types import Info

from debtgraph.domain.payments import vop
from debtgraph.domain.payments.models import BillingStatus as DomainBillingStatus
from debtgraph.resolvers import billing
from debtgraph.resolvers.loaders import Window
from debtgraph.schema.base import Connection, ctx_of, one_of, rows_connection, schema_type, shape_of

BillingStatus = strawberry.enum(
    DomainBillingStatus, name="BillingStatus", description="Gateway state of one debit attempt."
)

# The VOP rules name their outcomes as Literal types; the graph's enums are built from those
# literals, so a new outcome in the rules is a new enum value here, never a drift.
DomainVopResult = enum.StrEnum(  # type: ignore[misc]
    "VopResult", {value.upper(): value for value in get_args(vop.VopResult)}
)
DomainScoreLabel = enum.StrEnum(  # type: ignore[misc]
    "ScoreLabel", {value.upper(): value for value in get_args(vop.ScoreLabel)}
)
VopResult = strawberry.enum(
    DomainVopResult, name="VopResult", description="What a VOP check concluded (the seed's table)."
)
ScoreLabel = strawberry.enum(
    DomainScoreLabel, name="ScoreLabel", description="The band a VOP score falls in."
)


async def attempts_of(
    info: Info,
    parent: Any,
    parent_id: int,
    window: Window,
    status: DomainBillingStatus | None,
) -> Connection[Any]:
    """``Debtor.billingAttempts`` / ``Upload.billingAttempts``: one page of a parent's attempts.

    BillingAttempt is built through the running schema: schema.billing imports the modules
    whose types call this, so naming it here would be a cycle.
    """
    return await one_of(attempts_of_many(info, parent, [parent_id], window, status))


async def attempts_of_many(
    info: Info,
    parent: Any,
    parent_ids: Sequence[int],
    window: Window,
    status: DomainBillingStatus | None,
) -> list[Connection[Any] | Exception]:
    """``attempts_of`` for many parents: each one's connection, or the error it failed with."""
    pages = await billing.attempts_pages(
        ctx_of(info),
        parent,
        parent_ids,
        window=window,
        status=status.value if status is not None else None,
    )
    # Rows of the resolver's NODE_COLUMNS, in the running schema's BillingAttempt's shape.
    shape = shape_of(schema_type(info, "BillingAttempt"))
    return [page if isinstance(page, Exception) else rows_connection(page, shape) for page in pages]
