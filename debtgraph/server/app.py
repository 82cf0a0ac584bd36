"""The composition root: builds the services and the Starlette app serving both faces."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

import debtgraph.jobs  # noqa: F401  (registers every task)
from debtgraph.domain.core import outbox
from debtgraph.domain.core.clock import Clock, SystemClock
from debtgraph.domain.core.database import create_engine, session_factory
from debtgraph.domain.core.errors import ExpectedError
from debtgraph.domain.core.eventbus import EventBus, InProcessEventBus, RedisEventBus
from debtgraph.domain.core.hashstore import HashStore, MemoryHashStore, RedisHashStore
from debtgraph.domain.core.services import Services
from debtgraph.domain.core.throttle import InMemoryThrottle, RedisThrottle, Throttle
from debtgraph.domain.payments import providers as vop_providers
from debtgraph.domain.payments.gateways import HttpGateway, SandboxGateway
from debtgraph.domain.webhooks import deliveries as webhook_deliveries
from debtgraph.domain.webhooks.transport import Sender
from debtgraph.jobs.billing import GATEWAY_PORT
from debtgraph.jobs.queue import ArqJobQueue, InProcessJobQueue
from debtgraph.jobs.webhooks import SENDER_PORT
from debtgraph.resolvers import events
from debtgraph.resolvers.context import AppServices
from debtgraph.rest_compat.common import JSONResponse
from debtgraph.rest_compat.errors import (
    handle_http_exception,
    handle_server_error,
    handle_use_case_error,
)
from debtgraph.rest_compat.routes import ROUTES
from debtgraph.schema import schema
from debtgraph.schema.http import DebtgraphGraphQL
from debtgraph.schema.persisted import DOCUMENTS_PORT, PersistedQueries
from debtgraph.server.limits import GRAPHQL_PATH, RequestGuard, graphql_error
from debtgraph.server.middleware import ContextMiddleware
from debtgraph.settings import Settings

log = logging.getLogger("debtgraph")
# Net allocations between young-generation collections (Python's default is 700).
GC_THRESHOLD = 50_000


def tune_collector() -> None:
    """Freeze what the started process holds and space out young-generation collections.

    What exists once a process has started (modules, the schema, the mappers, schwifty's
    registry) lives as long as it: out of the collector's sight, a full collection walks only
    what the work allocates. A page of a hundred debtors, or a 5,000-row ingestion chunk, nets
    tens of thousands of objects freed by reference counting when done: at the default
    threshold (700) the collector would walk them dozens of times per request or chunk
    (bench/graphql.py, bench/ingest.py). Called once per process (a second freeze would only
    move what the first left); the API's lifespan and each worker process call it.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


@dataclass
class Runtime:
    """Everything the app wired, kept on ``app.state.runtime`` (tests reach in through it)."""

    # One bundle: requests (through ContextMiddleware) and jobs (through the queue) share it.
    services: AppServices


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    """Create engine, bus, queue, throttle and the ports from the settings."""
    clock = clock or SystemClock()
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
    )
    factory = session_factory(engine)
    bus: EventBus
    throttle: Throttle
    jobs: InProcessJobQueue | ArqJobQueue
    documents: HashStore
    if settings.redis_url:
        bus = RedisEventBus(settings.redis_url)
        # Shared, so a document registered through one API process runs by hash on the others.
        documents = RedisHashStore(
            settings.redis_url,
            "debtgraph:apq",
            settings.graphql_apq_max_entries,
            settings.graphql_apq_ttl_seconds,
        )
        jobs = ArqJobQueue(settings.redis_url)
        throttle = RedisThrottle(
            settings.redis_url, settings.login_max_attempts, settings.login_window_seconds
        )
    else:
        bus = InProcessEventBus()
        documents = MemoryHashStore(
            settings.graphql_apq_max_entries, settings.graphql_apq_ttl_seconds
        )
        jobs = InProcessJobQueue()
        throttle = InMemoryThrottle(
            clock, settings.login_max_attempts, settings.login_window_seconds
        )
    # Relaying an event writes its webhook deliveries in the same transaction (DESIGN.md).
    outbox.register_relay_step(webhook_deliveries.fan_out)
    ports: dict[str, Any] = {
        DOCUMENTS_PORT: documents,
        SENDER_PORT: Sender(),
        GATEWAY_PORT: (
            HttpGateway(
                settings.billing_gateway_url,
                settings.billing_gateway_api_key,
                settings.billing_gateway_mid or "GATEWAY",
            )
            if settings.billing_gateway_url
            else SandboxGateway()
        ),
        vop_providers.PORT: vop_providers.provider_from_settings(
            settings.vop_provider,
            settings.vop_provider_url,
            timeout=settings.vop_provider_timeout_seconds,
            batch_size=settings.vop_provider_batch,
        ),
    }
    services: AppServices = Services(
        settings=settings,
        engine=engine,
        session_factory=factory,
        bus=bus,
        jobs=jobs,
        clock=clock,
        throttle=throttle,
        ports=ports,
    )
    if isinstance(jobs, InProcessJobQueue):
        jobs.bind(services)
    return Runtime(services=services)


async def start_runtime(runtime: Runtime, *, periodic: bool = True) -> None:
    """Open connections and start the in-process cron when there is no worker."""
    services = runtime.services
    await services.bus.start()
    jobs = services.jobs
    if isinstance(jobs, ArqJobQueue):
        await jobs.start()
    elif isinstance(jobs, InProcessJobQueue) and periodic:
        jobs.start_periodic()


async def stop_runtime(runtime: Runtime) -> None:
    """Close everything opened by :func:`start_runtime`."""
    services = runtime.services
    jobs = services.jobs
    if isinstance(jobs, InProcessJobQueue):
        with contextlib.suppress(TimeoutError):
            await jobs.drain(timeout=10)
    await events.stop_dispatcher(services)
    await jobs.close()  # type: ignore[attr-defined]
    await services.bus.stop()
    sender = services.ports.get(SENDER_PORT)
    if isinstance(sender, Sender):
        await sender.close()
    if isinstance(services.throttle, RedisThrottle):
        await services.throttle.close()
    await services.ports[DOCUMENTS_PORT].close()
    await services.engine.dispose()


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: the database (and Redis when configured) answer."""
    runtime: Runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        async with runtime.services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        log.exception("readiness: database unreachable")
        checks["database"] = "unreachable"
    if runtime.services.settings.redis_url:
        from redis import asyncio as aioredis

        client = aioredis.Redis.from_url(runtime.services.settings.redis_url)
        try:
            await client.ping()
            checks["redis"] = "ok"
        except Exception:
            log.exception("readiness: redis unreachable")
            checks["redis"] = "unreachable"
        finally:
            await client.aclose()
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    """A wrong method on /graphql in the GraphQL error shape its clients read (Allow kept);
    every other path's in its REST family's shape."""
    assert isinstance(exc, HTTPException)
    if request.url.path == GRAPHQL_PATH and exc.status_code == 405:
        response = graphql_error(
            405,
            f"The {request.method} method is not supported at {GRAPHQL_PATH}: use GET, HEAD or"
            " POST.",
            "METHOD_NOT_ALLOWED",
        )
        response.headers["Allow"] = "GET, HEAD, POST"
        return response
    return await handle_http_exception(request, exc)


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, periodic: bool = True
) -> Starlette:
    """The ASGI application."""
    settings = settings or Settings.from_env()
    settings.check()
    runtime = build_runtime(settings, clock)
    documents = PersistedQueries.from_settings(
        settings, schema._schema, runtime.services.ports[DOCUMENTS_PORT]
    )
    graphql = DebtgraphGraphQL(
        graphiql=not settings.is_production, settings=settings, documents=documents
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await start_runtime(runtime, periodic=periodic)
        tune_collector()
        try:
            yield
        finally:
            await stop_runtime(runtime)

    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "Idempotency-Key",
                    "Cleavr-Version",
                    "X-Request-ID",
                ],
                expose_headers=["X-Request-ID", "Retry-After"],
                allow_credentials=False,
            )
        )
    middleware.append(Middleware(ContextMiddleware, services=runtime.services))
    # Inside the context middleware: it needs the caller, and answers with the request id.
    middleware.append(Middleware(RequestGuard))
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *ROUTES,
        ],
        middleware=middleware,
        exception_handlers={
            ExpectedError: handle_use_case_error,
            HTTPException: _http_exception,
            Exception: handle_server_error,
        },
        lifespan=lifespan,
    )
    # No redirect to the path without its trailing slash: Starlette builds its Location from
    # the Host header, which the client chooses (PUBLIC_BASE_URL or not), and the seeds' paths
    # have none. Such a path is the face's own 404, as any other unknown path.
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    return app
