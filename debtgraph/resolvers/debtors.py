"""Operator use cases on debtors: filtered lists, one debtor with its logs, validate, update."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, bindparam, or_, select

from debtgraph.domain.banking.iban import normalize_iban
from debtgraph.domain.core.eventbus import BusMessage
from debtgraph.domain.core.events import DEBTOR_EVENTS
from debtgraph.domain.core.outbox import record_event
from debtgraph.domain.debtors import ingestion
from debtgraph.domain.debtors import validation as debtor_validation
from debtgraph.domain.debtors.csv_reader import normalize_header
from debtgraph.domain.debtors.fields import merge_raw
from debtgraph.domain.debtors.models import (
    Debtor,
    DebtorStatus,
    RiskClass,
    Upload,
    ValidationStatus,
)
from debtgraph.domain.payments.models import BillingAttempt, VopLog
from debtgraph.resolvers import events, vop_logs
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import FieldError, InputError, NotFound
from debtgraph.resolvers.loaders import Page, Window
from debtgraph.resolvers.pagination import (
    KeysetStatements,
    NumberedPage,
    NumberedStatements,
    id_filter,
    keyset_rows,
    keyset_statements,
    not_among,
    numbered_page,
    numbered_rows,
    numbered_statements,
    page_select,
    parse_id,
)
from debtgraph.resolvers.permissions import require_operator
from debtgraph.resolvers.uploads import get_upload

RISK_CLASSES = tuple(r.value for r in RiskClass)
MAX_SEARCH = 100
MAX_RAW_KEYS = 200
MAX_RAW_VALUE = 1000


@dataclass(frozen=True, slots=True)
class DebtorFilters:
    """The filters both faces offer on debtor lists; every value already checked."""

    upload_id: int | None = None
    status: str | None = None
    country: str | None = None
    risk_class: str | None = None
    validation_status: str | None = None
    search: str | None = None

    def as_key(self) -> tuple[tuple[str, Hashable], ...]:
        """A hashable form for dataloader keys."""
        return tuple(
            (name, value)
            for name in ("status", "country", "risk_class", "validation_status", "search")
            if (value := getattr(self, name)) is not None
        )


def _invalid(field: str) -> InputError:
    return InputError([not_among(field)])


def check_filters(
    *,
    upload_id: Any = None,
    status: str | None = None,
    country: str | None = None,
    risk_class: str | None = None,
    validation_status: str | None = None,
    search: str | None = None,
) -> DebtorFilters:
    """Check filter values (422 naming each bad one)."""
    errors: list[FieldError] = []
    upload_key = id_filter("upload_id", upload_id, errors)
    checks = (
        ("status", status, {s.value for s in DebtorStatus}),
        ("risk_class", risk_class, set(RISK_CLASSES)),
        ("validation_status", validation_status, {s.value for s in ValidationStatus}),
    )
    for name, value, allowed in checks:
        if value not in (None, "") and value not in allowed:
            errors.extend(_invalid(name).errors)
    country_code = None
    if country not in (None, ""):
        country_code = str(country).strip().upper()
        if not (len(country_code) == 2 and country_code.isascii() and country_code.isalpha()):
            errors.append(
                FieldError("country", "invalid", "The country field must be a 2-letter code.")
            )
    term = (search or "").strip() or None
    if term is not None and len(term) > MAX_SEARCH:
        errors.append(
            FieldError(
                "search", "too_long", f"The search field must not exceed {MAX_SEARCH} characters."
            )
        )
    if errors:
        raise InputError(errors)
    return DebtorFilters(
        upload_id=upload_key,
        status=status or None,
        country=country_code,
        risk_class=risk_class or None,
        validation_status=validation_status or None,
        search=term,
    )


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filter_conditions(values: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """SQL conditions for checked filter values (also the page loader's filter builder)."""
    conditions: list[ColumnElement[bool]] = []
    if values.get("upload_id") is not None:
        conditions.append(Debtor.upload_id == values["upload_id"])
    for name, column in (
        ("status", Debtor.status),
        ("country", Debtor.country),
        ("risk_class", Debtor.risk_class),
        ("validation_status", Debtor.validation_status),
    ):
        if values.get(name) is not None:
            conditions.append(column == values[name])
    term = values.get("search")
    if term:
        pattern = _like(term)
        matches = [
            Debtor.first_name.ilike(pattern, escape="\\"),
            Debtor.last_name.ilike(pattern, escape="\\"),
            Debtor.email.ilike(pattern, escape="\\"),
            # The name typed whole, as fullName shows it ("Maria Rodriguez"). NULL unless
            # both parts are there: either alone is the full name, matched above.
            (Debtor.first_name + " " + Debtor.last_name).ilike(pattern, escape="\\"),
        ]
        # IBANs are stored compact and upper case; search the same form of the term.
        compact = normalize_iban(term)
        if compact:
            matches.append(Debtor.iban.like(_like(compact), escape="\\"))
        conditions.append(or_(*matches))
    return conditions


def _statement(filters: DebtorFilters) -> Select[Any]:
    values = {
        "upload_id": filters.upload_id,
        **dict(filters.as_key()),
    }
    return select(Debtor).where(*filter_conditions(values))


# What a list page of debtors shows, named one by one: a column added to the table later (a
# sensitive one included) reaches the list only when written here. Not shown: the raw CSV row,
# the full IBAN and the bookkeeping no face shows on a list (row number, blacklist mark).
LIST_FIELDS = (
    "id",
    "upload_id",
    "iban_masked",
    "iban_valid",
    "bank_name",
    "bank_code",
    "bic",
    "first_name",
    "last_name",
    "email",
    "phone",
    "national_id",
    "birth_date",
    "street",
    "street_number",
    "floor",
    "door",
    "apartment",
    "postcode",
    "city",
    "province",
    "country",
    "amount",
    "currency",
    "sepa_type",
    "status",
    "risk_class",
    "name_matched",
    "external_reference",
    "validation_status",
    "validation_errors",
    "validated_at",
    "created_at",
    "updated_at",
)
LIST_COLUMNS = [getattr(Debtor, key).label(key) for key in LIST_FIELDS]
_LIST_PAGE = page_select(LIST_COLUMNS)
# The filters compared to a value as they are; a search is rewritten into patterns first.
_PLAIN_FILTERS = ("upload_id", "status", "country", "risk_class", "validation_status")


@functools.lru_cache(maxsize=2 ** len(_PLAIN_FILTERS))  # one per subset of them
def _list_statements(names: tuple[str, ...]) -> NumberedStatements:
    """The list's statements for one set of plain filters, their values bound by name."""
    conditions = filter_conditions({name: bindparam(name) for name in names})
    return numbered_statements(_LIST_PAGE, conditions, Debtor.id)


async def list_debtors(
    ctx: Context, filters: DebtorFilters, *, page: int, per_page: int
) -> NumberedPage[dict[str, Any]]:
    """A numbered page of debtors, newest first, each a dict of LIST_COLUMNS by attribute name."""
    require_operator(ctx)
    values = {"upload_id": filters.upload_id, **dict(filters.as_key())}
    if filters.search is None:
        params = {name: values[name] for name in _PLAIN_FILTERS if values.get(name) is not None}
        statements = _list_statements(tuple(params))
    else:
        params = {}
        statements = numbered_statements(_LIST_PAGE, filter_conditions(values), Debtor.id)
    async with ctx.uow.reading() as conn:
        return await numbered_rows(conn, statements, params, page, per_page)


async def upload_debtors(
    ctx: Context, upload_id: Any, filters: DebtorFilters, *, page: int, per_page: int
) -> NumberedPage[Debtor]:
    """A numbered page of one upload's debtors (NotFound for an unknown upload)."""
    upload = await get_upload(ctx, upload_id)
    stmt = _statement(filters).where(Debtor.upload_id == upload.id)
    async with ctx.uow.session() as session:
        return await numbered_page(session, stmt, Debtor.id, page, per_page)


# What a debtor node of the graph's lists shows: the list's fields, and the raw CSV row, row
# number and blacklist mark the graph shows on every debtor. Read as Core rows of these columns
# (no entity is built for a row that is only shown).
NODE_FIELDS = (*LIST_FIELDS, "row_number", "raw_data", "blacklisted")
_NODE_SELECT = select(*(getattr(Debtor, key).label(key) for key in NODE_FIELDS))


@functools.lru_cache(maxsize=2 ** (len(_PLAIN_FILTERS) + 4))  # by filters and window shape
def _node_statements(names: tuple[str, ...], shape: Window) -> KeysetStatements:
    """The graph's list statements for one set of plain filters and one window shape, the
    filters' values bound by name."""
    conditions = filter_conditions({name: bindparam(name) for name in names})
    return keyset_statements(_NODE_SELECT, conditions, Debtor.id, shape)


async def debtor_connection(
    ctx: Context, filters: DebtorFilters, *, window: Window
) -> Page[Row[Any]]:
    """A keyset page of debtors, newest first (GraphQL), each a row of NODE_FIELDS."""
    require_operator(ctx)
    values = {"upload_id": filters.upload_id, **dict(filters.as_key())}
    if filters.search is None:
        params = {name: values[name] for name in _PLAIN_FILTERS if values.get(name) is not None}
        # The window's shape only (its direction, which cursors): their values are bound.
        shape = Window(
            0,
            after=0 if window.after is not None else None,
            before=0 if window.before is not None else None,
            backward=window.backward,
            oldest_first=window.oldest_first,
        )
        statements = _node_statements(tuple(params), shape)
    else:
        params = {}
        statements = keyset_statements(_NODE_SELECT, filter_conditions(values), Debtor.id, window)
    async with ctx.uow.reading() as conn:
        return await keyset_rows(conn, statements, params, window)


async def find_debtors(
    ctx: Context,
    *,
    upload_key: Callable[[], str | None],
    window: Window,
    **filters: Any,
) -> Page[Row[Any]]:
    """``debtors`` (GraphQL): operators only, asked before the upload key and filters are read."""
    require_operator(ctx)
    checked = check_filters(upload_id=upload_key(), **filters)
    return await debtor_connection(ctx, checked, window=window)


async def get_debtor(ctx: Context, debtor_id: Any) -> Debtor:
    """One debtor, or NotFound."""
    require_operator(ctx)
    debtor = await ctx.loaders.by(Debtor.id).load(parse_id(debtor_id, "Debtor"))
    if debtor is None:
        raise NotFound("Debtor")
    return debtor


async def debtors_by_ids(ctx: Context, ids: list[int]) -> dict[int, Debtor]:
    """Debtors among ids (operators only; others see none)."""
    if ctx.principal is None or not ctx.principal.is_operator:
        return {}
    rows = await ctx.loaders.by(Debtor.id).load_many(ids)
    return {row.id: row for row in rows if row is not None}


@dataclass(frozen=True, slots=True)
class DebtorDetail:
    """A debtor with its upload, VOP logs and billing attempts."""

    debtor: Debtor
    upload: Upload | None
    vop_logs: list[VopLog]
    billing_attempts: list[BillingAttempt]


async def debtor_detail(ctx: Context, debtor_id: Any) -> DebtorDetail:
    """A debtor with everything ``GET /api/admin/debtors/{id}`` shows."""
    debtor = await get_debtor(ctx, debtor_id)
    upload = await ctx.loaders.by(Upload.id).load(debtor.upload_id)
    logs = await ctx.loaders.many(VopLog.debtor_id, order_by=[VopLog.id]).load(debtor.id)
    attempts = await ctx.loaders.many(BillingAttempt.debtor_id, order_by=[BillingAttempt.id]).load(
        debtor.id
    )
    return DebtorDetail(debtor, upload, list(logs), list(attempts))


def _debtor_event(ctx: Context, session: Any, debtor: Debtor, previous: str) -> None:
    record_event(
        session,
        ctx.clock,
        type="debtor.validated",
        object_type="debtor",
        object_id=str(debtor.id),
        obj={
            "id": debtor.id,
            "upload_id": debtor.upload_id,
            "status": debtor.status,
            "validation_status": debtor.validation_status,
            "validation_errors": debtor.validation_errors,
            "iban_valid": debtor.iban_valid,
            "name_matched": debtor.name_matched,
            "risk_class": debtor.risk_class,
        },
        previous={"validation_status": previous},
    )


async def validate_debtor(ctx: Context, debtor_id: Any) -> Debtor:
    """Validate one debtor again, whatever its current validation state."""
    require_operator(ctx)
    key = parse_id(debtor_id, "Debtor")
    async with ctx.uow.session() as session:
        debtor = await debtor_validation.lock_changeable(session, key, "validate")
        if debtor is None:
            raise NotFound("Debtor")
        previous = debtor.validation_status
        await debtor_validation.validate_one(session, ctx.clock, debtor)
        await vop_logs.check_debtor_now(ctx, session, debtor)
        upload = await session.get(Upload, debtor.upload_id)
        if upload is not None:
            await debtor_validation.recount(session, ctx.clock, upload)
        _debtor_event(ctx, session, debtor, previous)
    await ctx.uow.commit()
    return debtor


def _cell_text(value: str | float | None) -> str:
    """A raw_data value as the text of a CSV cell: a JSON number in plain decimal digits.

    ``str`` writes a large or tiny float in exponent form (``1e+308``), which no amount rule
    reads as a number: the row was refused as having no amount instead of a too large one.
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return str(value)


def check_raw_data(raw_data: Any) -> dict[str, str]:
    """A raw_data object of scalar values, keys normalised as CSV headers are; else 422."""
    if raw_data is None:
        raise InputError([FieldError("raw_data", "required", "The raw data field is required.")])
    if not isinstance(raw_data, Mapping):
        raise InputError(
            [FieldError("raw_data", "invalid", "The raw data field must be an object.")]
        )
    if len(raw_data) > MAX_RAW_KEYS:
        raise InputError(
            [FieldError("raw_data", "too_many", f"raw_data may hold at most {MAX_RAW_KEYS} keys.")]
        )
    cleaned: dict[str, str] = {}
    errors: list[FieldError] = []
    for key, value in raw_data.items():
        name = normalize_header(str(key))
        path = f"raw_data.{key}"
        if not name:
            errors.append(FieldError(path, "invalid", "Keys of raw_data must not be blank."))
        elif isinstance(value, bool) or not isinstance(value, str | int | float | type(None)):
            errors.append(
                FieldError(path, "invalid", f"The {path} field must be a string, a number or null.")
            )
        elif isinstance(value, str) and len(value) > MAX_RAW_VALUE:
            errors.append(
                FieldError(path, "too_long", f"The {path} field must not exceed 1000 characters.")
            )
        else:
            cleaned[name] = _cell_text(value)
    if errors:
        raise InputError(errors)
    return cleaned


async def update_debtor(ctx: Context, debtor_id: Any, raw_data: Any) -> Debtor:
    """Merge raw_data into the debtor's row, derive its fields again and re-validate it."""
    require_operator(ctx)
    key = parse_id(debtor_id, "Debtor")
    async with ctx.uow.session() as session:
        debtor = await debtor_validation.lock_changeable(session, key, "update")
        if debtor is None:
            raise NotFound("Debtor")
        changes = check_raw_data(raw_data)
        merged = merge_raw(debtor.raw_data or {}, changes)
        previous = debtor.validation_status
        debtor.raw_data = merged
        for name, value in ingestion.debtor_fields_from_raw(merged).items():
            setattr(debtor, name, value)
        await debtor_validation.validate_one(session, ctx.clock, debtor)
        await vop_logs.check_debtor_now(ctx, session, debtor)
        upload = await session.get(Upload, debtor.upload_id)
        if upload is not None:
            await debtor_validation.recount(session, ctx.clock, upload)
        _debtor_event(ctx, session, debtor, previous)
    await ctx.uow.commit()
    return debtor


async def _load_debtor(ctx: Context, message: BusMessage) -> Debtor | None:
    return (await debtors_by_ids(ctx, [int(message.object_id)])).get(int(message.object_id))


async def watch_debtors(
    ctx: Context, upload_key: Callable[[], int | None]
) -> AsyncIterator[Debtor]:
    """Each debtor (of the upload ``upload_key`` names, if any) after a status or validation change.

    Operators only, asked before the key is read.
    """
    require_operator(ctx)
    upload_id = upload_key()

    def match(message: BusMessage) -> bool:
        return upload_id is None or message.data.get("object", {}).get("upload_id") == upload_id

    topic = events.Topic("debtor", frozenset(DEBTOR_EVENTS), _load_debtor, match, current_only=True)
    async for model in events.stream(ctx, topic):
        yield model


async def _load_billing_attempt(ctx: Context, message: BusMessage) -> BillingAttempt | None:
    require_operator(ctx)
    found = await ctx.loaders.by(BillingAttempt.id).load(int(message.object_id))
    return found  # type: ignore[no-any-return]


async def watch_billing_attempts(
    ctx: Context,
    upload_key: Callable[[], int | None],
    debtor_key: Callable[[], int | None],
) -> AsyncIterator[BillingAttempt]:
    """Each billing attempt (of one upload and/or one debtor, if given) after it is created
    or changes status. Operators only, asked before the keys are read."""
    require_operator(ctx)
    upload_id, debtor_id = upload_key(), debtor_key()

    def keep(attempt: BillingAttempt) -> bool:
        return (upload_id is None or attempt.upload_id == upload_id) and (
            debtor_id is None or attempt.debtor_id == debtor_id
        )

    topic = events.Topic(
        "billing_attempt",
        frozenset({"billing_attempt.updated"}),
        _load_billing_attempt,
        keep=keep,
        current_only=True,
    )
    async for attempt in events.stream(ctx, topic):
        yield attempt
