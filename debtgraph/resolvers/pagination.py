"""Paging of root lists: keyset (GraphQL cursors, Cleavr ``starting_after``) and numbered pages."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from debtgraph.domain.core.errors import FieldError
from debtgraph.resolvers.errors import InputError, NotFound
from debtgraph.resolvers.loaders import MAX_PAGE, Page, Window

# Ids are INTEGER columns: PostgreSQL refuses a larger parameter outright (a 500, not a miss).
MAX_ID = 2**31 - 1


def db_id(text: str) -> int | None:
    """A row id written in ASCII digits within the column's range, else None (no such row)."""
    # isascii(): str.isdigit() accepts "²" and "٣", which int() then refuses or reads.
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_ID:
        return None
    return int(text)


def attribute(name: str) -> str:
    """A parameter as Laravel's messages name it (``risk_class`` → "risk class")."""
    return name.replace("_", " ")


def not_among(name: str) -> FieldError:
    """The 422 of a filter given none of its values, worded as Laravel's ``in`` rule words it."""
    return FieldError(name, "invalid", f"The selected {attribute(name)} is invalid.")


def id_filter(name: str, value: Any, errors: list[FieldError]) -> int | None:
    """A list filter naming a row by its numeric id (``upload_id=…``), or None when absent.

    An unknown id matches nothing (an empty list), a negative one too (an integer, as Laravel's
    rule reads it, that names no row: 0 stands for it); one that is not an integer, or beyond
    the column's range (PostgreSQL would refuse the parameter: a 500), is added to ``errors``
    as the field's 422, worded as the operator API words it.
    """
    if value in (None, ""):
        return None
    text = str(value).strip()
    label = attribute(name)
    digits = text[1:] if text[:1] in ("-", "+") else text
    if not (digits.isascii() and digits.isdigit()):
        errors.append(FieldError(name, "invalid", f"The {label} field must be an integer."))
        return None
    if text.startswith("-"):
        return 0  # no row has a negative or zero id
    text = digits
    key = db_id(text)
    if key is None:
        errors.append(
            FieldError(name, "invalid", f"The {label} field must not be greater than {MAX_ID}.")
        )
    return key


# An object's REST id, or how to read it from the face's argument once the caller is checked:
# GraphQL's ids are Relay ids whose reading refuses another type's as NotFound, which must not
# answer before the caller's own refusal (anonymous, missing scope, not an operator).
IdRef = str | Callable[[], str]


def read_id(ref: IdRef) -> str:
    """The REST id ``ref`` names (read now, after the use case's permission check)."""
    return ref() if callable(ref) else ref


def parse_id(value: Any, resource: str) -> int:
    """A numeric id from a path or an argument; anything else is simply not found."""
    key = db_id(str(value)) if value is not None else None
    if key is None:
        raise NotFound(resource)
    return key


T = TypeVar("T")


def encode_cursor(row_id: int) -> str:
    """Opaque cursor for a row id."""
    return base64.urlsafe_b64encode(f"c:{row_id}".encode()).decode()


def decode_cursor(cursor: str | None, field: str = "after") -> int | None:
    """Row id of a cursor; a malformed cursor is an input error, not a 500."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, value = raw.partition(":")
        row_id = db_id(value) if prefix == "c" else None
        if row_id is None:
            # Beyond the id column's range too: PostgreSQL refuses such a parameter (a 500).
            raise ValueError
        return row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InputError([FieldError(field, "invalid_cursor", "The cursor is invalid.")]) from None


def page_size_error(field: str = "first") -> FieldError:
    """The refusal of a page size outside 1..MAX_PAGE (the GraphQL limits check it early too)."""
    return FieldError(field, "out_of_range", f"{field} must be between 1 and {MAX_PAGE}.")


def check_first(first: int | None, default: int = 20, field: str = "first") -> int:
    """Page size, refusing values outside 1..100 rather than silently clamping them."""
    if first is None:
        return default
    if first < 1 or first > MAX_PAGE:
        raise InputError([page_size_error(field)])
    return first


def check_window(
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    *,
    oldest_first: bool = False,
) -> Window:
    """Relay's ``first``/``after``/``last``/``before`` read into a window (input errors named).

    ``first`` and ``last`` together would ask for two pages at once: refused, as GitHub does.
    """
    if first is not None and last is not None:
        raise InputError([FieldError("last", "invalid", "Pass first or last, not both.")])
    after_id = decode_cursor(after, "after")
    before_id = decode_cursor(before, "before")
    if last is not None:
        size = check_first(last, field="last")
        return Window(size, after_id, before_id, backward=True, oldest_first=oldest_first)
    return Window(check_first(first), after_id, before_id, oldest_first=oldest_first)


async def keyset_page(
    session: AsyncSession, stmt: Select[Any], id_col: Any, window: Window
) -> Page[Any]:
    """Newest-first page of ``stmt`` in a window of row ids, with the filtered total."""
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    stmt = stmt.where(*window.bounds(id_col)).order_by(window.order(id_col)).limit(window.size + 1)
    rows = list((await session.scalars(stmt)).all())
    return window.page(rows, int(total or 0))


@dataclass(frozen=True, slots=True)
class KeysetStatements:
    """A keyset list's page and its filtered total, for one shape of window: the cursors and
    the page size bound by name (``_after``, ``_before``, ``_limit``; see keyset_params)."""

    page: Select[Any]
    count: Select[Any]


def keyset_statements(
    columns: Select[Any], conditions: Sequence[ColumnElement[bool]], id_col: Any, window: Window
) -> KeysetStatements:
    """The statements of :func:`keyset_rows` for windows shaped as ``window`` (the same
    direction and cursors given), whatever their values: built once, they run again with new
    values (SQLAlchemy keeps the cache key it computed for them, a walk of every column)."""
    shape = Window(
        0,
        after=bindparam("_after") if window.after is not None else None,  # type: ignore[arg-type]
        before=bindparam("_before") if window.before is not None else None,  # type: ignore[arg-type]
        backward=window.backward,
        oldest_first=window.oldest_first,
    )
    count = select(func.count()).select_from(id_col.class_).where(*conditions)
    return KeysetStatements(
        # The filtered total rides on the page's rows, last: an uncorrelated subquery, which
        # the database counts once (PostgreSQL's InitPlan), in the page's round trip.
        page=columns.add_columns(count.scalar_subquery().label(_TOTAL))
        .where(*conditions, *shape.bounds(id_col))
        .order_by(shape.order(id_col))
        .limit(bindparam("_limit")),
        count=count,
    )


def keyset_params(window: Window) -> dict[str, Any]:
    """The values :func:`keyset_statements` binds for ``window``."""
    params: dict[str, Any] = {"_limit": window.size + 1}
    if window.after is not None:
        params["_after"] = window.after
    if window.before is not None:
        params["_before"] = window.before
    return params


async def keyset_rows(
    conn: AsyncConnection,
    statements: KeysetStatements,
    params: dict[str, Any],
    window: Window,
) -> Page[Row[Any]]:
    """:func:`keyset_page` for lists that only show columns, in one statement of
    :func:`keyset_statements` (with the filters' ``params``): Core rows for entities, each
    carrying the filtered total as its last column (``_page_total``; rows are read by name).
    Only an empty page past a cursor, which has no row to carry the total, costs a second
    statement; an empty page without one is an empty list."""
    rows = list((await conn.execute(statements.page, {**params, **keyset_params(window)})).all())
    if rows:
        total = rows[0]._mapping[_TOTAL]
    elif window.after is None and window.before is None:
        total = 0
    else:
        total = await conn.scalar(statements.count, params)
    return window.page(rows, int(total or 0))


@dataclass(frozen=True, slots=True)
class NumberedPage(Generic[T]):
    """A ``page``/``per_page`` slice with the ``meta`` the Tether API shows."""

    items: list[T]
    current_page: int
    per_page: int
    total: int

    @property
    def last_page(self) -> int:
        """Number of the last page (1 when empty, as Laravel does)."""
        return max(1, math.ceil(self.total / self.per_page))

    def meta(self) -> dict[str, int]:
        """The ``meta`` object."""
        return {
            "current_page": self.current_page,
            "per_page": self.per_page,
            "total": self.total,
            "last_page": self.last_page,
        }


async def numbered_page(
    session: AsyncSession, stmt: Select[Any], id_col: Any, page: int, per_page: int
) -> NumberedPage[Any]:
    """Newest-first numbered page of ``stmt``."""
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (
        await session.scalars(
            stmt.order_by(id_col.desc()).offset((page - 1) * per_page).limit(per_page)
        )
    ).all()
    return NumberedPage(list(rows), page, per_page, int(total or 0))


def page_select(columns: Sequence[Any]) -> Select[Any]:
    """What :func:`numbered_statements` pages: ``columns`` and the filtered total.

    Built once per list (at import): selecting some forty labelled columns anew for every
    request would coerce each of them again.
    """
    return select(*columns, func.count().over().label(_TOTAL))


@dataclass(frozen=True, slots=True)
class NumberedStatements:
    """A list's page and its count (for a page past the end), taking ``_offset`` and ``_limit``.

    Statements whose values are all bound parameters can be built once and run again with new
    values: SQLAlchemy then keeps the cache key it computed for them, a walk of every column.
    """

    page: Select[Any]
    count: Select[Any]


def numbered_statements(
    columns: Select[Any], conditions: Sequence[ColumnElement[bool]], id_col: Any
) -> NumberedStatements:
    """The newest-first statements of a :func:`page_select` filtered by ``conditions``."""
    return NumberedStatements(
        page=columns.where(*conditions)
        .order_by(id_col.desc())
        .offset(bindparam("_offset"))
        .limit(bindparam("_limit")),
        count=select(func.count()).select_from(id_col.class_).where(*conditions),
    )


async def numbered_rows(
    conn: AsyncConnection,
    statements: NumberedStatements,
    params: dict[str, Any],
    page: int,
    per_page: int,
) -> NumberedPage[dict[str, Any]]:
    """One page of :func:`numbered_statements` with ``params``, each row a dict by the labels
    selected, the total in the same statement.

    For list pages that only show columns: a Core read (no ORM result machinery around a read
    that builds no objects), each row the one dict a face may shape in place, and the count
    riding on the page as a window (``count(*) OVER ()`` counts the filtered rows before
    LIMIT); only a page past the end, which has no row to carry it, costs a second statement.
    """
    result = await conn.execute(
        statements.page, {**params, "_offset": (page - 1) * per_page, "_limit": per_page}
    )
    keys = list(result.keys())[:-1]
    rows = result.all()
    if rows:
        total = rows[0][-1]
    else:
        total = await conn.scalar(statements.count, params)
    # zip stops at the last column: the total is not a field of the rows.
    records = [dict(zip(keys, row, strict=False)) for row in rows]
    return NumberedPage(records, page, per_page, int(total or 0))


_TOTAL = "_page_total"


def query_int(raw: str | None) -> int | None:
    """An integer query value (ASCII digits, optionally signed), else None.

    Stricter than int(), which also reads "7_000" and non-ASCII digits. A value too long for any
    integer type reads as ±10**20, beyond every range checked here, without converting it.
    """
    text = (raw or "").strip()
    sign = -1 if text[:1] == "-" else 1
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    return sign * 10**20 if len(digits) > 20 else sign * int(digits)


def parse_page_params(
    page: str | None, per_page: str | None, default_per_page: int = 20
) -> tuple[int, int]:
    """Validate ``page`` and ``per_page`` query values (422 with the field at fault)."""
    errors: list[FieldError] = []
    page_n, per_n = 1, default_per_page
    if page not in (None, ""):
        number = query_int(page)
        if number is None:
            errors.append(FieldError("page", "invalid", "The page field must be an integer."))
        elif number < 1:
            errors.append(FieldError("page", "invalid", "The page field must be at least 1."))
        elif number > MAX_ID:
            # No list holds more rows than there are ids, and OFFSET must fit a BIGINT.
            errors.append(
                FieldError("page", "invalid", f"The page field must not be greater than {MAX_ID}.")
            )
        else:
            page_n = number
    if per_page not in (None, ""):
        number = query_int(per_page)
        if number is None:
            errors.append(
                FieldError("per_page", "invalid", "The per page field must be an integer.")
            )
        elif not 1 <= number <= MAX_PAGE:
            errors.append(
                FieldError(
                    "per_page", "invalid", f"The per page field must be between 1 and {MAX_PAGE}."
                )
            )
        else:
            per_n = number
    if errors:
        raise InputError(errors)
    return page_n, per_n
