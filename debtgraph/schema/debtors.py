"""Operator graph: the Debtor node, its filters, re-validation, update and status changes."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from debtgraph.domain.debtors.fields import full_address, full_name
from debtgraph.domain.debtors.models import Debtor as DebtorModel
from debtgraph.domain.debtors.models import DebtorStatus as DomainDebtorStatus
from debtgraph.domain.debtors.models import RiskClass as DomainRiskClass
from debtgraph.domain.debtors.models import UploadStatus as DomainUploadStatus
from debtgraph.domain.debtors.models import ValidationStatus as DomainValidationStatus
from debtgraph.domain.payments.models import BillingAttempt as AttemptModel
from debtgraph.domain.payments.models import VopLog as VopLogModel
from debtgraph.resolvers import debtors, uploads
from debtgraph.resolvers.pagination import check_window
from debtgraph.schema import payments as payment_types
from debtgraph.schema import vop_logs as vop_log_types
from debtgraph.schema.base import (
    Connection,
    EntityFields,
    RowShape,
    UserError,
    attempt,
    batched,
    ctx_of,
    filter_id,
    node_key,
    nodes_in_order,
    none_if_empty,
    object_id,
    one_of,
    rows_connection,
    schema_type,
    shape_of,
)
from debtgraph.schema.live import nodes
from debtgraph.schema.payments import BillingStatus, VopResult
from debtgraph.schema.vop_logs import VopLog

# The domain's enumerations, exposed once and used on inputs and outputs alike.
UploadStatus = strawberry.enum(DomainUploadStatus, description="Processing state of an upload.")
DebtorStatus = strawberry.enum(DomainDebtorStatus, description="Collection state of a debtor.")
ValidationStatus = strawberry.enum(
    DomainValidationStatus, description="Stage-B validation state of a debtor row."
)
RiskClass = strawberry.enum(
    DomainRiskClass, description="How risky collecting from a debtor looks."
)


# The resolvers of Debtor's edges for many debtors at once (schema.base.batched): the fields call
# them for one, the compiled executor once for a whole list of debtors.


async def _uploads(info: Info, parents: Sequence[Debtor]) -> list[Any]:
    found = await uploads.upload_rows_by_ids(ctx_of(info), {p.upload_id for p in parents})
    # Rows of the loader's batches, which may be several results.
    shape = shape_of(schema_type(info, "Upload"))
    built = dict(zip(found, shape.build_each(list(found.values())), strict=True))
    return [built.get(p.upload_id) for p in parents]


async def _billing_attempts(
    info: Info,
    parents: Sequence[Debtor],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    status: BillingStatus | None = None,
) -> list[Connection[Any] | Exception]:
    return await payment_types.attempts_of_many(
        info,
        AttemptModel.debtor_id,
        [p.database_id for p in parents],
        check_window(first, after, last, before),
        status,
    )


async def _vop_logs(
    info: Info,
    parents: Sequence[Debtor],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    result: VopResult | None = None,
) -> list[Connection[VopLog] | Exception]:
    return await vop_log_types.logs_of_many(
        info,
        VopLogModel.debtor_id,
        [p.database_id for p in parents],
        check_window(first, after, last, before),
        result,
    )


@strawberry.type(name="Debtor", description="A consumer to collect from by SEPA direct debit.")
class Debtor(relay.Node):
    id: relay.NodeID[str]
    database_id: int
    upload_id: int
    row_number: int
    iban_masked: str | None
    iban_valid: bool | None
    bank_name: str | None
    bank_code: str | None
    bic: str | None
    first_name: str | None
    last_name: str | None
    full_name: str | None
    email: str | None
    phone: str | None
    primary_phone: str | None
    national_id: str | None
    birth_date: date | None
    street: str | None
    street_number: str | None
    floor: str | None
    door: str | None
    apartment: str | None
    postcode: str | None
    city: str | None
    province: str | None
    country: str | None
    full_address: str | None
    amount: Decimal | None
    currency: str
    sepa_type: str
    status: DebtorStatus
    risk_class: RiskClass | None
    name_matched: bool | None
    external_reference: str | None
    validation_status: ValidationStatus
    validation_errors: list[str] | None
    blacklisted: bool
    validated_at: datetime | None
    raw_data: JSON
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: DebtorModel) -> Debtor:
        """Shape a debtor entity."""
        return cls.from_row(EntityFields(m))

    @classmethod
    def from_row(cls, m: Mapping[str, Any]) -> Debtor:
        """Shape a debtor: a row of the resolver's NODE_FIELDS by name, or an entity's
        attributes (EntityFields)."""
        return DEBTOR_ROWS.from_mapping(m)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Debtor | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: debtors.debtors_by_ids(ctx, ids), cls.from_model, numeric=True
        )

    @strawberry.field(description="The upload the debtor came in.", metadata=batched(_uploads))
    async def upload(
        self, info: Info
    ) -> Annotated[Upload, strawberry.lazy("debtgraph.schema.uploads")] | None:  # noqa: F821
        # Upload is named lazily and built through the schema: schema.uploads imports this module.
        return await one_of(_uploads(info, [self]))

    @strawberry.field(
        description="The debtor's billing attempts, newest first.",
        metadata=batched(_billing_attempts),
    )
    async def billing_attempts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        status: BillingStatus | None = None,
    ) -> Connection[
        Annotated[BillingAttempt, strawberry.lazy("debtgraph.schema.billing")]  # noqa: F821
    ]:
        # BillingAttempt is named lazily: schema.billing imports this module's neighbours.
        return await one_of(
            _billing_attempts(
                info, [self], first=first, after=after, last=last, before=before, status=status
            )
        )

    @strawberry.field(
        description="The debtor's VOP checks, newest first.", metadata=batched(_vop_logs)
    )
    async def vop_logs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        result: VopResult | None = None,
    ) -> Connection[VopLog]:
        return await one_of(
            _vop_logs(
                info, [self], first=first, after=after, last=last, before=before, result=result
            )
        )


def _risk_class(value: str | None) -> RiskClass | None:
    return RiskClass(value) if value else None


# full_address's parts in the order of its keyword arguments.
ADDRESS_PARTS = tuple(inspect.signature(full_address).parameters)


def _address(*parts: str | None) -> str | None:
    return full_address(**dict(zip(ADDRESS_PARTS, parts, strict=True)))


DEBTOR_ROWS = RowShape(
    Debtor,
    {
        "full_name": (full_name, "first_name", "last_name"),
        "primary_phone": "phone",
        "full_address": (_address, *ADDRESS_PARTS),
        "status": (DebtorStatus, "status"),
        "risk_class": (_risk_class, "risk_class"),
        "validation_status": (ValidationStatus, "validation_status"),
        "validation_errors": (none_if_empty, "validation_errors"),
    },
)


@strawberry.input
class DebtorValidateInput:
    debtor_id: strawberry.ID = strawberry.field(description="The Relay id or the REST id.")


@strawberry.input
class DebtorUpdateInput:
    debtor_id: strawberry.ID = strawberry.field(description="The Relay id or the REST id.")
    raw_data: JSON = strawberry.field(description="Columns to merge into the row's raw data.")


@strawberry.type
class DebtorPayload:
    debtor: Debtor | None
    user_errors: list[UserError]


@strawberry.type
class DebtorQuery:
    @strawberry.field(description="Debtors, newest first, with the REST filters (operators only).")
    async def debtors(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        upload_id: strawberry.ID | None = None,
        status: DebtorStatus | None = None,
        country: str | None = None,
        risk_class: RiskClass | None = None,
        validation_status: ValidationStatus | None = None,
        search: str | None = None,
    ) -> Connection[Debtor]:
        page = await debtors.find_debtors(
            ctx_of(info),
            upload_key=functools.partial(filter_id, upload_id, "Upload"),
            window=check_window(first, after, last, before),
            status=status.value if status else None,
            country=country,
            risk_class=risk_class.value if risk_class else None,
            validation_status=validation_status.value if validation_status else None,
            search=search,
        )
        return rows_connection(page, DEBTOR_ROWS)

    @strawberry.field(
        description="One debtor by its id or REST id (GET /api/admin/debtors/{id}; operators)."
    )
    async def debtor(self, info: Info, id: strawberry.ID) -> Debtor | None:
        ctx = ctx_of(info)
        return Debtor.from_model(await debtors.get_debtor(ctx, object_id(id, "Debtor")))


@strawberry.type
class DebtorMutation:
    @strawberry.mutation(description="Validate one debtor again.")
    async def debtor_validate(self, info: Info, input: DebtorValidateInput) -> DebtorPayload:
        ctx = ctx_of(info)

        async def run() -> DebtorModel:
            return await debtors.validate_debtor(ctx, node_key(input.debtor_id, "Debtor"))

        model, errors = await attempt(run())
        return DebtorPayload(debtor=Debtor.from_model(model) if model else None, user_errors=errors)

    @strawberry.mutation(
        description="Merge columns into a debtor's raw data, derive and re-validate."
    )
    async def debtor_update(self, info: Info, input: DebtorUpdateInput) -> DebtorPayload:
        ctx = ctx_of(info)

        async def run() -> DebtorModel:
            key = node_key(input.debtor_id, "Debtor")
            return await debtors.update_debtor(ctx, key, input.raw_data)

        model, errors = await attempt(run())
        return DebtorPayload(debtor=Debtor.from_model(model) if model else None, user_errors=errors)


@strawberry.type
class DebtorSubscription:
    @strawberry.subscription(
        description="A debtor whose status or validation result changed; only those of one "
        "upload when an id is given. A change already followed by another when it is sent is "
        "skipped (the next one shows the debtor as it is)."
    )
    async def debtor_status_changed(
        self, info: Info, upload_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Debtor, None]:
        key = functools.partial(node_key, upload_id, "Upload")
        async for node in nodes(debtors.watch_debtors(ctx_of(info), key), Debtor.from_model):
            yield node

    @strawberry.subscription(
        description="A billing attempt after it is created, changes status or can no longer "
        "be retried; only those of one upload and/or one debtor when ids are given. A change "
        "already followed by another when it is sent is skipped (the next one shows the "
        "attempt as it is)."
    )
    async def billing_attempt_updated(
        self,
        info: Info,
        upload_id: strawberry.ID | None = None,
        debtor_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[
        Annotated[BillingAttempt, strawberry.lazy("debtgraph.schema.billing")],  # noqa: F821
        None,
    ]:
        # BillingAttempt is named lazily: schema.billing imports this module's neighbours.
        attempt_type = schema_type(info, "BillingAttempt")
        source = debtors.watch_billing_attempts(
            ctx_of(info),
            functools.partial(node_key, upload_id, "Upload"),
            functools.partial(node_key, debtor_id, "Debtor"),
        )
        async for node in nodes(source, attempt_type.from_model):
            yield node
