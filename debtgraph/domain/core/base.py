"""Declarative base and column types shared by every aggregate."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, Numeric, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# PostgreSQL's type oid of ``timestamp with time zone``, as asyncpg describes result columns.
_TIMESTAMPTZ_OID = 1184


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC one is required")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text, so a stored offset would break ordering.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """No per-value call where the driver already gives aware UTC datetimes."""
        if (
            dialect.driver == "asyncpg"
            and coltype == _TIMESTAMPTZ_OID
            and self.impl_instance.dialect_impl(dialect).result_processor(dialect, coltype) is None
        ):
            # asyncpg decodes every timestamptz to a datetime in UTC: converting each would be
            # a no-op that a page of a hundred rows pays hundreds of times.
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Give back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """NUMERIC(12,2) that always hands back a Decimal with two places."""

    impl = Numeric(12, 2, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Decimal | None:
        """Quantize to cents before storing."""
        return None if value is None else Decimal(value).quantize(_CENT)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """SQLite may give a float back; go through str to stay exact. A Decimal (asyncpg's)
        is exact already: quantized as it is, without the text round trip."""
        if value is None:
            return None
        if type(value) is Decimal:
            return value.quantize(_CENT)
        return Decimal(str(value)).quantize(_CENT)


_CENT = Decimal("0.01")


def json_amount(value: Decimal) -> float:
    """Money as a JSON number, the one REST renders for the same ``Decimal``.

    The seeds type amounts as numbers and REST renders a Decimal as float (rest_compat.common);
    an event's object is stored as JSON, so it takes that number here. Exact for NUMERIC(12,2):
    the shortest float repr of 12 significant digits reads back as written.
    """
    return float(value)


# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Root of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        Decimal: Money(),
        dict[str, Any]: JSONType,
        list[str]: JSONType,
        list[Any]: JSONType,
    }
