"""Operator graph: Upload and Debtor nodes, validation stats, dashboard, blacklist, live updates."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NewType

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from debtgraph.domain.dashboard import DashboardFigures
from debtgraph.domain.debtor_validation import ValidationStats as StatsModel
from debtgraph.domain.ingestion import progress_of
from debtgraph.domain.uploads import BlacklistedIban, UploadStatus
from debtgraph.domain.uploads import Debtor as DebtorModel
from debtgraph.domain.uploads import Upload as UploadModel
from debtgraph.domain.validation import full_address, full_name
from debtgraph.resolvers import blacklist, dashboard, debtors, events, uploads
from debtgraph.resolvers.auth import require_operator
from debtgraph.resolvers.errors import NotFound
from debtgraph.resolvers.loaders import PageKey
from debtgraph.resolvers.pagination import check_first, db_id, decode_cursor
from debtgraph.schema.base import (
    Connection,
    UserError,
    attempt,
    ctx_of,
    nodes_in_order,
    to_connection,
)

# The multipart spec's scalar is usually called Upload; that name is the upload node's here.
# build.py maps this type to the `File` scalar through StrawberryConfig.scalar_map.
FileUpload = NewType("FileUpload", object)
FILE_SCALAR = strawberry.scalar(
    name="File",
    description="A file sent as a part of a GraphQL multipart request.",
    serialize=lambda value: None,
    parse_value=lambda value: value,
)

UPLOAD_EVENTS = ("upload.processing", "upload.completed", "upload.failed", "upload.validated")
DEBTOR_EVENTS = ("debtor.status_changed", "debtor.validated")


def _node_key(global_id: relay.GlobalID | None, type_name: str) -> int | None:
    """The numeric id behind a global id of the given type (NotFound for any other)."""
    if global_id is None:
        return None
    key = db_id(global_id.node_id)
    if global_id.type_name != type_name or key is None:
        raise NotFound(type_name)
    return key


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
    status: str
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
        """Shape an upload row."""
        total = model.total_records
        return cls(
            id=str(model.id),
            database_id=model.id,
            filename=model.filename,
            original_filename=model.original_filename,
            file_size=model.file_size,
            mime_type=model.mime_type,
            status=model.status,
            total_records=total,
            processed_records=model.processed_records,
            failed_records=model.failed_records,
            success_rate=uploads.success_rate(model),
            progress=float(progress_of(model)),
            is_complete=model.status in {UploadStatus.COMPLETED, UploadStatus.FAILED},
            error_message=model.error_message,
            processing_started_at=model.processing_started_at,
            processing_completed_at=model.processing_completed_at,
            created_at=model.created_at,
            updated_at=model.updated_at,
        )

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
        validation_status: str | None = None,
        status: str | None = None,
        country: str | None = None,
        risk_class: str | None = None,
        search: str | None = None,
    ) -> Connection[Debtor]:
        filters = debtors.check_filters(
            status=status,
            country=country,
            risk_class=risk_class,
            validation_status=validation_status,
            search=search,
        )
        key = PageKey(self.database_id, check_first(first), decode_cursor(after), filters.as_key())
        loader = ctx_of(info).loaders.pages(
            DebtorModel.upload_id, debtors.filter_conditions, name="upload.debtors"
        )
        return to_connection(await loader.load(key), Debtor.from_model)


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
    status: str
    risk_class: str | None
    name_matched: bool | None
    external_reference: str | None
    validation_status: str
    validation_errors: list[str] | None
    blacklisted: bool
    validated_at: datetime | None
    raw_data: JSON
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: DebtorModel) -> Debtor:
        """Shape a debtor row."""
        return cls(
            id=str(m.id),
            database_id=m.id,
            upload_id=m.upload_id,
            row_number=m.row_number,
            iban_masked=m.iban_masked,
            iban_valid=m.iban_valid,
            bank_name=m.bank_name,
            bank_code=m.bank_code,
            bic=m.bic,
            first_name=m.first_name,
            last_name=m.last_name,
            full_name=full_name(m.first_name, m.last_name),
            email=m.email,
            phone=m.phone,
            primary_phone=m.phone,
            national_id=m.national_id,
            birth_date=m.birth_date,
            street=m.street,
            street_number=m.street_number,
            floor=m.floor,
            door=m.door,
            apartment=m.apartment,
            postcode=m.postcode,
            city=m.city,
            province=m.province,
            country=m.country,
            full_address=full_address(
                street=m.street,
                street_number=m.street_number,
                floor=m.floor,
                door=m.door,
                apartment=m.apartment,
                postcode=m.postcode,
                city=m.city,
                province=m.province,
                country=m.country,
            ),
            amount=m.amount,
            currency=m.currency,
            sepa_type=m.sepa_type,
            status=m.status,
            risk_class=m.risk_class,
            name_matched=m.name_matched,
            external_reference=m.external_reference,
            validation_status=m.validation_status,
            validation_errors=m.validation_errors or None,
            blacklisted=m.blacklisted,
            validated_at=m.validated_at,
            raw_data=m.raw_data,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Debtor | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: debtors.debtors_by_ids(ctx, ids), cls.from_model, numeric=True
        )

    @strawberry.field(description="The upload the debtor came in.")
    async def upload(self, info: Info) -> Upload | None:
        found = await uploads.uploads_by_ids(ctx_of(info), [self.upload_id])
        model = found.get(self.upload_id)
        return Upload.from_model(model) if model else None


@strawberry.type(description="An IBAN operators refuse to debit.")
class BlacklistEntry:
    database_id: int
    iban: str = strawberry.field(description="Electronic form: no spaces, upper case.")
    reason: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, m: BlacklistedIban) -> BlacklistEntry:
        """Shape a blacklist row."""
        return cls(database_id=m.id, iban=m.iban, reason=m.reason, created_at=m.created_at)


@strawberry.type
class UploadCounts:
    total: int
    pending: int
    processing: int
    completed: int
    failed: int


@strawberry.type
class DebtorStatusCounts:
    pending: int
    processing: int
    recovered: int
    failed: int


@strawberry.type
class CountryCount:
    country: str
    count: int


@strawberry.type
class DebtorCounts:
    total: int
    by_status: DebtorStatusCounts
    by_country: list[CountryCount] = strawberry.field(description="Most debtors first.")


@strawberry.type(description="The operator dashboard: the figures of GET /api/admin/dashboard.")
class Dashboard:
    uploads: UploadCounts
    debtors: DebtorCounts
    latest_uploads: list[Upload]
    latest_debtors: list[Debtor]

    @classmethod
    def from_figures(cls, f: DashboardFigures) -> Dashboard:
        """Shape the domain figures."""
        return cls(
            uploads=UploadCounts(total=f.uploads_total, **f.uploads_by_status),
            debtors=DebtorCounts(
                total=f.debtors_total,
                by_status=DebtorStatusCounts(**f.debtors_by_status),
                by_country=[
                    CountryCount(country=c, count=n) for c, n in f.debtors_by_country.items()
                ],
            ),
            latest_uploads=[Upload.from_model(u) for u in f.latest_uploads],
            latest_debtors=[Debtor.from_model(d) for d in f.latest_debtors],
        )


@strawberry.type
class UploadQuery:
    @strawberry.field(description="Uploads, newest first (operators only).")
    async def uploads(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: str | None = None,
    ) -> Connection[Upload]:
        page = await uploads.upload_connection(
            ctx_of(info), status=status, first=check_first(first), after_id=decode_cursor(after)
        )
        return to_connection(page, Upload.from_model)

    @strawberry.field(description="Debtors, newest first, with the REST filters (operators only).")
    async def debtors(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        upload_id: relay.GlobalID | None = None,
        status: str | None = None,
        country: str | None = None,
        risk_class: str | None = None,
        validation_status: str | None = None,
        search: str | None = None,
    ) -> Connection[Debtor]:
        ctx = ctx_of(info)
        require_operator(ctx)
        filters = debtors.check_filters(
            upload_id=_node_key(upload_id, "Upload"),
            status=status,
            country=country,
            risk_class=risk_class,
            validation_status=validation_status,
            search=search,
        )
        page = await debtors.debtor_connection(
            ctx, filters, first=check_first(first), after_id=decode_cursor(after)
        )
        return to_connection(page, Debtor.from_model)

    @strawberry.field(description="The operator dashboard.")
    async def dashboard(self, info: Info) -> Dashboard:
        return Dashboard.from_figures(await dashboard.figures(ctx_of(info)))

    @strawberry.field(description="Blacklisted IBANs, newest first; search matches part of one.")
    async def blacklisted_ibans(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
    ) -> Connection[BlacklistEntry]:
        page = await blacklist.list_entries(
            ctx_of(info), search=search, first=check_first(first), after_id=decode_cursor(after)
        )
        return to_connection(page, BlacklistEntry.from_model)


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
    upload_id: relay.GlobalID


@strawberry.type
class UploadValidatePayload:
    upload: Upload | None
    total: int
    valid: int
    invalid: int
    user_errors: list[UserError]


@strawberry.input
class DebtorValidateInput:
    debtor_id: relay.GlobalID


@strawberry.input
class DebtorUpdateInput:
    debtor_id: relay.GlobalID
    raw_data: JSON = strawberry.field(description="Columns to merge into the row's raw data.")


@strawberry.type
class DebtorPayload:
    debtor: Debtor | None
    user_errors: list[UserError]


@strawberry.input
class BlacklistAddInput:
    iban: str
    reason: str | None = None


@strawberry.input
class BlacklistRemoveInput:
    iban: str


@strawberry.type
class BlacklistPayload:
    entry: BlacklistEntry | None
    user_errors: list[UserError]


async def _debtor_key(global_id: relay.GlobalID) -> int | None:
    return _node_key(global_id, "Debtor")


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
            key = _node_key(input.upload_id, "Upload")
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

    @strawberry.mutation(description="Validate one debtor again.")
    async def debtor_validate(self, info: Info, input: DebtorValidateInput) -> DebtorPayload:
        ctx = ctx_of(info)

        async def run() -> DebtorModel:
            return await debtors.validate_debtor(ctx, await _debtor_key(input.debtor_id))

        model, errors = await attempt(run())
        return DebtorPayload(debtor=Debtor.from_model(model) if model else None, user_errors=errors)

    @strawberry.mutation(
        description="Merge columns into a debtor's raw data, derive and re-validate."
    )
    async def debtor_update(self, info: Info, input: DebtorUpdateInput) -> DebtorPayload:
        ctx = ctx_of(info)

        async def run() -> DebtorModel:
            key = await _debtor_key(input.debtor_id)
            return await debtors.update_debtor(ctx, key, input.raw_data)

        model, errors = await attempt(run())
        return DebtorPayload(debtor=Debtor.from_model(model) if model else None, user_errors=errors)

    @strawberry.mutation(
        description="Blacklist an IBAN (stored normalised; adding twice is a no-op)."
    )
    async def blacklist_add(self, info: Info, input: BlacklistAddInput) -> BlacklistPayload:
        entry, errors = await attempt(blacklist.add(ctx_of(info), input.iban, input.reason))
        return BlacklistPayload(
            entry=BlacklistEntry.from_model(entry) if entry else None, user_errors=errors
        )

    @strawberry.mutation(description="Take an IBAN off the blacklist.")
    async def blacklist_remove(self, info: Info, input: BlacklistRemoveInput) -> BlacklistPayload:
        entry, errors = await attempt(blacklist.remove(ctx_of(info), input.iban))
        return BlacklistPayload(
            entry=BlacklistEntry.from_model(entry) if entry else None, user_errors=errors
        )


@strawberry.type
class UploadSubscription:
    @strawberry.subscription(
        description="An upload after each progress step, completion, failure or validation; "
        "every upload when no id is given."
    )
    async def upload_progress(
        self, info: Info, upload_id: relay.GlobalID | None = None
    ) -> AsyncGenerator[Upload, None]:
        ctx = ctx_of(info)
        require_operator(ctx)
        key = _node_key(upload_id, "Upload")
        object_id = str(key) if key is not None else None
        async for message in events.watch(
            ctx, UPLOAD_EVENTS, object_type="upload", object_id=object_id
        ):
            found = await uploads.uploads_by_ids(ctx, [int(message.object_id)])
            model = found.get(int(message.object_id))
            if model is not None:
                yield Upload.from_model(model)

    @strawberry.subscription(
        description="A debtor whose status or validation result changed; only those of one "
        "upload when an id is given."
    )
    async def debtor_status_changed(
        self, info: Info, upload_id: relay.GlobalID | None = None
    ) -> AsyncGenerator[Debtor, None]:
        ctx = ctx_of(info)
        require_operator(ctx)
        key = _node_key(upload_id, "Upload")
        async for message in events.watch(ctx, DEBTOR_EVENTS, object_type="debtor"):
            obj = message.data.get("object", {})
            if key is not None and obj.get("upload_id") != key:
                continue
            found = await debtors.debtors_by_ids(ctx, [int(message.object_id)])
            model = found.get(int(message.object_id))
            if model is not None:
                yield Debtor.from_model(model)

    @strawberry.subscription(description="The dashboard again after each upload or debtor event.")
    async def dashboard_updated(self, info: Info) -> AsyncGenerator[Dashboard, None]:
        ctx = ctx_of(info)
        require_operator(ctx)
        async for _message in events.watch(ctx, (*UPLOAD_EVENTS, *DEBTOR_EVENTS)):
            yield Dashboard.from_figures(await dashboard.figures(ctx))
