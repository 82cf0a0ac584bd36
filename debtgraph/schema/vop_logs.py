"""Operator graph: the VopLog node and the ``vopLogs`` connections (root, debtor, upload)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from strawberry import relay
from strawberry.types import Info

from debtgraph.domain.payments import vop
from debtgraph.domain.payments.models import VopLog as VopLogModel
from debtgraph.resolvers import debtors, uploads, vop_logs
from debtgraph.resolvers.loaders import Page, Window
from debtgraph.resolvers.pagination import check_window
from debtgraph.schema.base import (
    Connection,
    EntityFields,
    RowShape,
    ctx_of,
    filter_id,
    nodes_in_order,
    one_of,
    rows_connection,
    schema_type,
    to_connection,
)
from debtgraph.schema.payments import ScoreLabel, VopResult


@strawberry.type(
    name="VopLog",
    description="One verification-of-payee check of a debtor's IBAN and name (GET "
    "/api/admin/vop-logs).",
)
class VopLog(relay.Node):
    id: relay.NodeID[str]
    database_id: int
    debtor_id: int
    upload_id: int
    iban_masked: str | None
    iban_valid: bool
    bank_identified: bool
    bank_name: str | None
    bic: str | None
    country: str | None
    vop_score: int
    score_label: ScoreLabel
    result: VopResult
    epc_code: str | None = strawberry.field(
        description="The EPC VOP scheme's answer: MTCH, CMTC, NMTC or NOAP; null when rejected."
    )
    provider_name: str | None = strawberry.field(
        description="The account holder's name as the provider gave it (kept for a close match)."
    )
    name_ratio: int | None = strawberry.field(description="Fuzzy name similarity 0..100.")
    is_positive: bool
    is_negative: bool
    created_at: datetime

    @classmethod
    def from_model(cls, m: VopLogModel) -> VopLog:
        """Shape a VOP log entity."""
        return cls.from_row(EntityFields(m))

    @classmethod
    def from_row(cls, m: Mapping[str, Any]) -> VopLog:
        """Shape a VOP log: a row of the resolver's NODE_FIELDS by name, or an entity's
        attributes (EntityFields); its figures derived by the rules the model's own properties
        answer by."""
        return VOP_LOG_ROWS.from_mapping(m)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[VopLog | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: vop_logs.logs_by_ids(ctx, ids), cls.from_model, numeric=True
        )

    @strawberry.field(description="The debtor checked.")
    async def debtor(
        self, info: Info
    ) -> Annotated[Debtor, strawberry.lazy("debtgraph.schema.debtors")] | None:  # noqa: F821
        # Debtor is named lazily: schema.debtors imports this module for Debtor.vopLogs.
        found = await debtors.debtors_by_ids(ctx_of(info), [self.debtor_id])
        model = found.get(self.debtor_id)
        return schema_type(info, "Debtor").from_model(model) if model else None

    @strawberry.field(description="The upload the debtor came in.")
    async def upload(
        self, info: Info
    ) -> Annotated[Upload, strawberry.lazy("debtgraph.schema.uploads")] | None:  # noqa: F821
        found = await uploads.uploads_by_ids(ctx_of(info), [self.upload_id])
        model = found.get(self.upload_id)
        return schema_type(info, "Upload").from_model(model) if model else None


VOP_LOG_ROWS = RowShape(
    VopLog,
    {
        "score_label": (ScoreLabel, "score_label"),
        "result": (VopResult, "result"),
        "is_positive": (vop.is_positive, "vop_score"),
        "is_negative": (vop.is_negative, "vop_score"),
    },
)


def connection_of(page: Page[VopLogModel]) -> Connection[VopLog]:
    """A page of logs as a connection."""
    return to_connection(page, VopLog.from_model)


def rows_connection_of(page: Page[Row[Any]]) -> Connection[VopLog]:
    """A page of logs read as rows of the resolver's NODE_COLUMNS as a connection."""
    return rows_connection(page, VOP_LOG_ROWS)


async def logs_of(
    info: Info,
    parent: object,
    parent_id: int,
    window: Window,
    result: VopResult | None,
) -> Connection[VopLog]:
    """``Debtor.vopLogs`` / ``Upload.vopLogs``: one windowed query for all parents asked."""
    return await one_of(logs_of_many(info, parent, [parent_id], window, result))


async def logs_of_many(
    info: Info,
    parent: object,
    parent_ids: Sequence[int],
    window: Window,
    result: VopResult | None,
) -> list[Connection[VopLog] | Exception]:
    """``logs_of`` for many parents: each one's connection, or the error its page failed with."""
    pages = await vop_logs.logs_of_many(
        ctx_of(info),
        parent,
        parent_ids,
        window=window,
        result=result.value if result is not None else None,
    )
    return [page if isinstance(page, Exception) else rows_connection_of(page) for page in pages]


def _keys(
    upload_id: strawberry.ID | None, debtor_id: strawberry.ID | None
) -> tuple[str | None, str | None]:
    return filter_id(upload_id, "Upload"), filter_id(debtor_id, "Debtor")


@strawberry.type
class VopLogQuery:
    @strawberry.field(
        description="VOP logs, newest first, with the REST filters (GET /api/admin/vop-logs; "
        "operators only)."
    )
    async def vop_logs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        upload_id: strawberry.ID | None = None,
        debtor_id: strawberry.ID | None = None,
        result: VopResult | None = None,
    ) -> Connection[VopLog]:
        page = await vop_logs.find_vop_logs(
            ctx_of(info),
            keys=functools.partial(_keys, upload_id, debtor_id),
            window=check_window(first, after, last, before),
            result=result.value if result is not None else None,
        )
        return connection_of(page)
