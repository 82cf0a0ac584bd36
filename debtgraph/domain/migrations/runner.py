"""Programmatic Alembic: upgrade to head and detect drift between models and migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from debtgraph.domain.core.database import create_engine
from debtgraph.domain.models import Base

_HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the bundled migration scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade_sync(connection: Any, url: str) -> None:
    cfg = alembic_config(url)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Apply every pending migration."""
    url = engine.url.render_as_string(hide_password=False)
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_sync, url)


def upgrade_blocking(url: str) -> None:
    """Apply migrations from synchronous code (the CLI)."""

    async def _go() -> None:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(_go())


async def drift(engine: AsyncEngine) -> list[Any]:
    """Differences between the migrated database and the models (empty when in step)."""

    def _compare(connection: Any) -> list[Any]:
        ctx = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(_compare)
