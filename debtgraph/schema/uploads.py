"""Operator graph: the Upload node, CSV upload and validation, and upload progress."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, NewType

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from debtgraph.domain.debtors.models import Debtor as DebtorModel
from debtgraph.domain.debtors.models import Upload as UploadModel
from debtgraph.domain.debtors.models import (
    upload_is_complete,
    upload_progress,
    upload_success_rate,
)
from debtgraph.domain.debtors.validation import ValidationStats as StatsModel
from debtgraph.domain.payments.models import BillingAttempt as AttemptModel
from debtgraph.domain.payments.models import VopLog as VopLogModel
from debtgraph.resolvers import debtors, uploads
from debtgraph.resolvers.loaders import PageKey
from debtgraph.resolvers.pagination import check_window
from debtgraph.schema import payments as payment_types
from debtgraph.schema import vop_logs as vop_log_types
from debtgraph.schema.base import (
    Connection,
    EntityFields,
    RowShape,
    UserError,
    attempt,
    ctx_of,
    node_key,
    nodes_in_order,
    object_id,
    to_connection,
)
from debtgraph.schema.debtors import (
    Debtor,
    DebtorStatus,
    RiskClass,
    UploadStatus,
    ValidationStatus,
)
from debtgraph.schema.live import nodes
from debtgraph.schema.payments import BillingStatus, VopResult
from debtgraph.schema.vop_logs import VopLog

# The multipart spec's scalar is usually called Upload; that name is the upload node's here.
# build.py maps this type to the `File` scalar through StrawberryConfig.scalar_map.
FileUpload = NewType("FileUpload", object)
FILE_SCALAR = strawberry.scalar(
    name="File",
    description="A file sent as a part of a GraphQL multipart request.",
    serialize=lambda value: None,
    parse_value=lambda value: value,
)


@strawberry.type(name="ValidationStats", description="An upload's debtors by validation result.")
class ValidationStats:
    total: int
    valid: int
    invalid: int = strawberry.field(description="Failed validation, blacklisted ones excluded.")
    pending: int
    blacklisted: int
    ready_for_sync: int = strawberry.field(description="Valid and still pending collection.")

    @classmethod
    def from_model(cls, stats: StatsModel) -> ValidationStats:
        """Shape the domain figures."""
        return cls(
            total=stats.total,
            valid=stats.valid,
            invalid=stats.invalid,
            pending=stats.pending,
            blacklisted=stats.blacklisted,
            ready_for_sync=stats.ready_for_sync,
        )


@strawberry.type(name="Upload", description="A CSV file of debtors an operator uploaded.")
class Upload(relay.Node):
    id: relay.NodeID[str]
    database_id: int = strawberry.field(description="The numeric id the Tether REST API shows.")
    filename: str
    original_filename: str
    file_size: int
    mime_type: str
    status: UploadStatus
    total_records: int
    processed_records: int = strawberry.field(description="Rows that passed validation.")
    failed_records: int = strawberry.field(description="Rows that failed validation.")
    success_rate: float
    progress: float = strawberry.field(description="(processed + failed) / total x 100.")
    is_complete: bool
    error_message: str | None
    processing_started_at: datetime | None
    processing_completed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, model: UploadModel) -> Upload:
        """Shape an upload entity."""
        return cls.from_row(EntityFields(model))

    @classmethod
    def from_row(cls, m: Mapping[str, Any]) -> Upload:
        """Shape an upload: a row of the resolver's NODE_FIELDS by name, or an entity's
        attributes (EntityFields); its figures derived by the rules the model's own properties
        answer by."""
        return UPLOAD_ROWS.from_mapping(m)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Upload | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: uploads.uploads_by_ids(ctx, ids), cls.from_model, numeric=True
        )

    @strawberry.field(description="How many debtors the upload holds.")
    async def debtors_count(self, info: Info) -> int:
        return await uploads.debtors_count(ctx_of(info), self.database_id)

    @strawberry.field(description="The upload's debtors by validation result.")
    async def validation_stats(self, info: Info) -> ValidationStats:
        stats = await uploads.validation_stats(ctx_of(info), self.database_id)
        return ValidationStats.from_model(stats)

    @strawberry.field(description="The upload's debtors, newest first, with the REST filters.")
    async def debtors(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        validation_status: ValidationStatus | None = None,
        status: DebtorStatus | None = None,
        country: str | None = None,
        risk_class: RiskClass | None = None,
        search: str | None = None,
    ) -> Connection[Debtor]:
        filters = debtors.check_filters(
            status=status.value if status else None,
            country=country,
            risk_class=risk_class.value if risk_class else None,
            validation_status=validation_status.value if validation_status else None,
            search=search,
        )
        key = PageKey(self.database_id, check_window(first, after, last, before), filters.as_key())
        loader = ctx_of(info).loaders.pages(
            DebtorModel.upload_id, debtors.filter_conditions, name="upload.debtors"
        )
        return to_connection(await loader.load(key), Debtor.from_model)

    @strawberry.field(description="The upload's billing attempts, newest first.")
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
        return await payment_types.attempts_of(
            info,
            AttemptModel.upload_id,
            self.database_id,
            check_window(first, after, last, before),
            status,
        )

    @strawberry.field(description="VOP checks of the upload's debtors, newest first.")
    async def vop_logs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        result: VopResult | None = None,
    ) -> Connection[VopLog]:
        return await vop_log_types.logs_of(
            info,
            VopLogModel.upload_id,
            self.database_id,
            check_window(first, after, last, before),
            result,
        )


def _success_rate(processed: int, total: int) -> float:
    return float(upload_success_rate(processed, total))


def _progress(processed: int, failed: int, total: int) -> float:
    return float(upload_progress(processed, failed, total))


UPLOAD_ROWS = RowShape(
    Upload,
    {
        "status": (UploadStatus, "status"),
        "success_rate": (_success_rate, "processed_records", "total_records"),
        "progress": (_progress, "processed_records", "failed_records", "total_records"),
        "is_complete": (upload_is_complete, "status"),
    },
)


@strawberry.input
class UploadCreateInput:
    file: FileUpload = strawberry.field(description="The CSV file (GraphQL multipart request).")


@strawberry.type
class RowError:
    row: int
    message: str
    data: JSON


@strawberry.type
class UploadCreatePayload:
    upload: Upload | None
    queued: bool = strawberry.field(description="True when a job stores the rows (> 100 rows).")
    created: int = strawberry.field(description="Rows that passed validation (small uploads).")
    failed: int = strawberry.field(description="Rows that failed validation (small uploads).")
    row_errors: list[RowError]
    unrecognized_columns: list[str] = strawberry.field(
        description="Columns no debtor field reads; their cells are kept in rawData."
    )
    user_errors: list[UserError]


@strawberry.input
class UploadValidateInput:
    upload_id: strawberry.ID = strawberry.field(description="The Relay id or the REST id.")


@strawberry.type
class UploadValidatePayload:
    upload: Upload | None
    total: int
    valid: int
    invalid: int
    user_errors: list[UserError]


@strawberry.type
class UploadQuery:
    @strawberry.field(description="Uploads, newest first (operators only).")
    async def uploads(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        status: UploadStatus | None = None,
    ) -> Connection[Upload]:
        page = await uploads.upload_connection(
            ctx_of(info),
            status=status.value if status else None,
            window=check_window(first, after, last, before),
        )
        return to_connection(page, Upload.from_model)

    @strawberry.field(
        description="One upload by its id or REST id (GET /api/admin/uploads/{id}; operators)."
    )
    async def upload(self, info: Info, id: strawberry.ID) -> Upload | None:
        return Upload.from_model(await uploads.get_upload(ctx_of(info), object_id(id, "Upload")))


@strawberry.type
class UploadMutation:
    @strawberry.mutation(
        description="Upload a CSV of debtors; same rules as POST /api/admin/uploads."
    )
    async def upload_create(self, info: Info, input: UploadCreateInput) -> UploadCreatePayload:
        result, errors = await attempt(uploads.create_upload(ctx_of(info), input.file))
        if result is None:
            return UploadCreatePayload(
                upload=None,
                queued=False,
                created=0,
                failed=0,
                row_errors=[],
                unrecognized_columns=[],
                user_errors=errors,
            )
        return UploadCreatePayload(
            upload=Upload.from_model(result.upload),
            queued=result.queued,
            created=result.created,
            failed=result.failed,
            row_errors=[
                RowError(row=e["row"], message=e["message"], data=e["data"]) for e in result.errors
            ],
            unrecognized_columns=result.unrecognized_columns,
            user_errors=[],
        )

    @strawberry.mutation(description="Validate an upload's pending debtors (not while processing).")
    async def upload_validate(
        self, info: Info, input: UploadValidateInput
    ) -> UploadValidatePayload:
        ctx = ctx_of(info)

        async def run() -> Any:
            key = node_key(input.upload_id, "Upload")
            outcome = await uploads.validate_upload(ctx, key)
            return outcome, await uploads.get_upload(ctx, key)

        result, errors = await attempt(run())
        if result is None:
            return UploadValidatePayload(
                upload=None, total=0, valid=0, invalid=0, user_errors=errors
            )
        outcome, model = result
        return UploadValidatePayload(
            upload=Upload.from_model(model),
            total=outcome.total,
            valid=outcome.valid,
            invalid=outcome.invalid,
            user_errors=[],
        )


@strawberry.type
class UploadSubscription:
    @strawberry.subscription(
        description="An upload after each progress step, completion, failure or validation; "
        "every upload when no id is given."
    )
    async def upload_progress(
        self, info: Info, upload_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Upload, None]:
        key = functools.partial(node_key, upload_id, "Upload")
        async for node in nodes(uploads.watch_uploads(ctx_of(info), key), Upload.from_model):
            yield node
