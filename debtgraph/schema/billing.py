"""Operator graph: the BillingAttempt node, billing start, void, retry and the SEPA files."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from debtgraph.domain.payments.models import BillingAttempt as AttemptModel
from debtgraph.domain.payments.models import (
    attempt_can_retry,
    attempt_is_approved,
    attempt_is_final,
)
from debtgraph.resolvers import billing, debtors, uploads
from debtgraph.resolvers.pagination import check_window
from debtgraph.schema.base import (
    Connection,
    EntityFields,
    RowShape,
    UserError,
    attempt,
    ctx_of,
    filter_id,
    node_key,
    nodes_in_order,
    to_connection,
)
from debtgraph.schema.debtors import Debtor
from debtgraph.schema.payments import BillingStatus
from debtgraph.schema.uploads import FileUpload, Upload


@strawberry.type(name="BillingAttempt", description="One SEPA direct-debit attempt on a debtor.")
class BillingAttempt(relay.Node):
    id: relay.NodeID[str]
    database_id: int
    debtor_id: int
    upload_id: int
    transaction_id: str
    unique_id: str | None
    amount: Decimal
    currency: str
    status: BillingStatus
    attempt_number: int
    mid_reference: str | None
    error_code: str | None
    error_message: str | None
    is_approved: bool
    is_final: bool
    can_retry: bool
    channel: str = strawberry.field(description="gateway, or sepa_file (a pain.008 export).")
    next_retry_at: datetime | None = strawberry.field(
        description="When the retry cron presents this failure again."
    )
    processed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: AttemptModel) -> BillingAttempt:
        """Shape an attempt entity."""
        return cls.from_row(EntityFields(m))

    @classmethod
    def from_row(cls, m: Mapping[str, Any]) -> BillingAttempt:
        """Shape an attempt: a row of the resolver's NODE_FIELDS by name, or an entity's
        attributes (EntityFields); its flags derived by the rules the model's own properties
        answer by."""
        return ATTEMPT_ROWS.from_mapping(m)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[BillingAttempt | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: billing.attempts_by_ids(ctx, ids), cls.from_model, numeric=True
        )

    @strawberry.field(description="The debtor debited.")
    async def debtor(self, info: Info) -> Debtor | None:
        model = (await debtors.debtors_by_ids(ctx_of(info), [self.debtor_id])).get(self.debtor_id)
        return Debtor.from_model(model) if model else None

    @strawberry.field(description="The upload the debtor came in.")
    async def upload(self, info: Info) -> Upload | None:
        model = (await uploads.uploads_by_ids(ctx_of(info), [self.upload_id])).get(self.upload_id)
        return Upload.from_model(model) if model else None


ATTEMPT_ROWS = RowShape(
    BillingAttempt,
    {
        "status": (BillingStatus, "status"),
        "is_approved": (attempt_is_approved, "status"),
        "is_final": (attempt_is_final, "status", "error_code", "attempt_number"),
        "can_retry": (
            attempt_can_retry,
            "status",
            "error_code",
            "attempt_number",
            "next_retry_at",
        ),
    },
)


@strawberry.input
class BillingStartInput:
    upload_id: strawberry.ID = strawberry.field(description="The Relay id or the REST id.")


@strawberry.type
class BillingStartPayload:
    started: int = strawberry.field(description="Attempts created (debtors billed).")
    billing_attempts: list[BillingAttempt]
    user_errors: list[UserError]


@strawberry.input
class BillingAttemptInput:
    billing_attempt_id: strawberry.ID = strawberry.field(description="The Relay id or the REST id.")


@strawberry.type
class BillingAttemptPayload:
    billing_attempt: BillingAttempt | None
    user_errors: list[UserError]


@strawberry.input
class SepaPain008ExportInput:
    upload_id: strawberry.ID = strawberry.field(description="The Relay id or the REST id.")


@strawberry.type
class SepaPain008ExportPayload:
    filename: str | None
    message_id: str | None
    transactions: int
    control_sum: Decimal | None
    xml: str | None = strawberry.field(description="The pain.008.001.10 document (UTF-8).")
    user_errors: list[UserError]


@strawberry.input
class SepaPain002ImportInput:
    file: FileUpload = strawberry.field(description="The pain.002 XML file (multipart).")


@strawberry.type
class SepaPain002ImportPayload:
    settled: int
    approved: int
    declined: int
    pending: list[str] = strawberry.field(description="Transactions the report leaves pending.")
    billing_attempts: list[BillingAttempt]
    user_errors: list[UserError]


@strawberry.type
class BillingQuery:
    @strawberry.field(description="Billing attempts, newest first, with the REST filters.")
    async def billing_attempts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        upload_id: strawberry.ID | None = None,
        debtor_id: strawberry.ID | None = None,
        status: BillingStatus | None = None,
    ) -> Connection[BillingAttempt]:
        def keys() -> tuple[str | None, str | None]:
            return filter_id(upload_id, "Upload"), filter_id(debtor_id, "Debtor")

        page = await billing.find_attempts(
            ctx_of(info),
            keys=keys,
            status=status.value if status is not None else None,
            window=check_window(first, after, last, before),
        )
        return to_connection(page, BillingAttempt.from_model)


def _attempt_payload(model: AttemptModel | None, errors: list[UserError]) -> BillingAttemptPayload:
    return BillingAttemptPayload(
        billing_attempt=BillingAttempt.from_model(model) if model else None, user_errors=errors
    )


@strawberry.type
class BillingMutation:
    @strawberry.mutation(description="Bill an upload's ready-for-sync debtors through the gateway.")
    async def billing_start(self, info: Info, input: BillingStartInput) -> BillingStartPayload:
        ctx = ctx_of(info)

        async def run() -> billing.BillingStarted:
            return await billing.start_billing(ctx, node_key(input.upload_id, "Upload"))

        result, errors = await attempt(run())
        attempts = result.attempts if result else []
        return BillingStartPayload(
            started=len(attempts),
            billing_attempts=[BillingAttempt.from_model(a) for a in attempts[:100]],
            user_errors=errors,
        )

    @strawberry.mutation(description="Cancel a pending attempt before it is settled.")
    async def billing_attempt_void(
        self, info: Info, input: BillingAttemptInput
    ) -> BillingAttemptPayload:
        ctx = ctx_of(info)
        key = functools.partial(node_key, input.billing_attempt_id, "BillingAttempt")

        async def run() -> AttemptModel:
            return await billing.void_attempt(ctx, key())

        return _attempt_payload(*await attempt(run()))

    @strawberry.mutation(description="Present a retryable failure again now; the new attempt.")
    async def billing_attempt_retry(
        self, info: Info, input: BillingAttemptInput
    ) -> BillingAttemptPayload:
        ctx = ctx_of(info)
        key = functools.partial(node_key, input.billing_attempt_id, "BillingAttempt")

        async def run() -> AttemptModel:
            return await billing.retry_attempt(ctx, key())

        return _attempt_payload(*await attempt(run()))

    @strawberry.mutation(description="Collect an upload by its bank: a pain.008 file.")
    async def sepa_pain008_export(
        self, info: Info, input: SepaPain008ExportInput
    ) -> SepaPain008ExportPayload:
        ctx = ctx_of(info)

        async def run() -> tuple[int, Any]:
            key = node_key(input.upload_id, "Upload")
            return key or 0, await billing.export_pain008(ctx, key)

        result, errors = await attempt(run())
        if result is None:
            return SepaPain008ExportPayload(
                filename=None,
                message_id=None,
                transactions=0,
                control_sum=None,
                xml=None,
                user_errors=errors,
            )
        upload_id, file = result
        return SepaPain008ExportPayload(
            filename=billing.pain008_filename(upload_id, file),
            message_id=file.message_id,
            transactions=file.transactions,
            control_sum=file.control_sum,
            xml=file.xml.decode(),
            user_errors=[],
        )

    @strawberry.mutation(description="Settle the attempts a bank's pain.002 report names.")
    async def sepa_pain002_import(
        self, info: Info, input: SepaPain002ImportInput
    ) -> SepaPain002ImportPayload:
        result, errors = await attempt(billing.import_pain002(ctx_of(info), input.file))
        if result is None:
            return SepaPain002ImportPayload(
                settled=0,
                approved=0,
                declined=0,
                pending=[],
                billing_attempts=[],
                user_errors=errors,
            )
        approved = sum(1 for a in result.settled if a.is_approved)
        return SepaPain002ImportPayload(
            settled=len(result.settled),
            approved=approved,
            declined=len(result.settled) - approved,
            pending=result.pending,
            billing_attempts=[BillingAttempt.from_model(a) for a in result.settled[:100]],
            user_errors=[],
        )
