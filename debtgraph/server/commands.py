"""What the CLI's management commands do, against the configured database."""

from __future__ import annotations

from collections.abc import Sequence

from debtgraph.domain.core.clock import SystemClock
from debtgraph.domain.core.database import create_engine, session_factory
from debtgraph.domain.core.errors import DomainValidationError
from debtgraph.domain.creditors.operators import upsert_operator
from debtgraph.domain.migrations.runner import upgrade
from debtgraph.domain.oauth.platforms import register_platform
from debtgraph.settings import Settings


def api_key_mode(settings: Settings) -> str:
    """``live`` keys (``sk_live_…``) exist only in production; elsewhere keys are ``sk_test_…``."""
    return "live" if settings.is_production else "test"


def _fail(exc: DomainValidationError) -> SystemExit:
    return SystemExit("debtgraph: " + "; ".join(f"{e.field}: {e.message}" for e in exc.errors))


async def create_admin(settings: Settings, email: str, password: str, name: str) -> int:
    """Create or reset an operator; returns its id."""
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            try:
                user = await upsert_operator(session, SystemClock(), email, password, name)
            except DomainValidationError as exc:
                raise _fail(exc) from None
            await session.commit()
            return user.id
    finally:
        await engine.dispose()


async def create_platform(
    settings: Settings, name: str, redirect_uris: Sequence[str], scopes: Sequence[str] | None
) -> dict[str, str]:
    """Register a platform; returns its client id and its secrets (shown once)."""
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            try:
                created = await register_platform(
                    session,
                    SystemClock(),
                    name,
                    redirect_uris,
                    scopes,
                    mode=api_key_mode(settings),
                )
            except DomainValidationError as exc:
                raise _fail(exc) from None
            await session.commit()
            return {
                "client_id": created.platform.client_id,
                "client_secret": created.client_secret,
                "api_key": created.api_key,
            }
    finally:
        await engine.dispose()
