"""The payments area's enumerations, exposed once and used on inputs and outputs alike."""

from __future__ import annotations

import enum
from typing import get_args

import strawberry

from debtgraph.domain.payments import vop
from debtgraph.domain.payments.models import BillingStatus as DomainBillingStatus

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
