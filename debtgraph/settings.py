"""Configuration from environment variables only, with defaults that run on a fresh machine.

A leaf module: server builds it, resolvers and jobs read it; domain never sees it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"


def _standard_webhooks_secret(secret: str) -> bool:
    """Whether ``secret`` is ``whsec_`` + the base64 of a key of 24 bytes or more (the Standard
    Webhooks form: the gateway's callbacks are keyed with those decoded bytes)."""
    if not secret.startswith("whsec_"):
        return False
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        return False
    return len(key) >= 24


class ConfigError(RuntimeError):
    """The environment describes a configuration the server must refuse to run with."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    """An integer setting; a value that is none is refused naming it (not a traceback)."""
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {text[:40]!r}.") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    """A number setting (seconds), refused naming it as :func:`_int` refuses."""
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a number, not {text[:40]!r}.")
    return value


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _introspection(value: str | None) -> str:
    """GRAPHQL_INTROSPECTION as true, false or operators (1/yes/on, 0/no/off as booleans)."""
    text = (value or "").strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return "true"
    if text in {"0", "false", "no", "off"}:
        return "false"
    return text


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with."""

    env: str = "development"
    database_url: str = "sqlite+aiosqlite:///./debtgraph.db"
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    max_upload_mb: int = 50
    allow_private_webhook_urls: bool = False
    cors_origins: tuple[str, ...] = ()
    # None: links are built from each request's own scheme and host (see Context.base_url).
    public_base_url: str | None = None
    upload_dir: str = "./var/uploads"
    log_level: str = "INFO"
    graphql_max_depth: int = 12
    graphql_max_cost: int = 10_000
    graphql_max_aliases: int = 100
    graphql_max_nodes: int = 100
    # Queries run through the compiled executor (schema/compiled.py); off: graphql-core's alone.
    graphql_compiled: bool = True
    # Every query run through both executors, differences recorded (the test suite's proof).
    graphql_check_compiled: bool = False
    # The text of one GraphQL document (queries are written by people; variables are not counted).
    graphql_max_document_kb: int = 64
    # "true", "false" or "operators"; empty: false when ENV=production, else true.
    graphql_introspection: str = ""
    # "off", "automatic" (APQ: any valid document may be registered by its hash) or "enforced"
    # (only the documents of GRAPHQL_PERSISTED_QUERIES_MANIFEST run).
    graphql_persisted_queries: str = "automatic"
    graphql_persisted_queries_manifest: str | None = None
    # The automatic store (Redis when configured, else per process): at most this many documents,
    # each forgotten this long after it was last used.
    graphql_apq_max_entries: int = 1000
    graphql_apq_ttl_seconds: int = 86_400
    access_token_ttl_seconds: int = 3600
    refresh_token_ttl_seconds: int = 60 * 60 * 24 * 30
    operator_token_ttl_seconds: int = 60 * 60 * 24 * 7
    # How often a live subscription re-checks that its token still works (PRODUCT.md §1).
    subscription_recheck_seconds: int = 30
    # Per API process (PRODUCT.md §12): one caller cannot hold every socket or subscription.
    ws_max_connections_per_principal: int = 10
    ws_max_subscriptions_per_connection: int = 20
    # A socket that sends no connection_init this long after it opened is closed with 4408, on
    # both protocols (graphql-transport-ws's own rule; Strawberry's default, 60 s).
    ws_connection_init_timeout_seconds: float = 60.0
    # Events one subscription may have waiting to be sent; a client that falls this far behind
    # is closed with 4408 rather than slowing the others or holding memory.
    ws_subscriber_queue_size: int = 256
    login_max_attempts: int = 5
    # Failed sign-ins per email from any addresses together, per window.
    login_max_attempts_per_email: int = 20
    # Sign-ins from one address for any emails together, per window: each costs an argon2 check.
    login_max_attempts_per_address: int = 100
    login_window_seconds: int = 60
    sync_upload_max_rows: int = 100
    # Large uploads are ingested in ranges of this many rows, several at once (one per worker
    # process); a range whose job stopped renewing its claim for the lease is taken over.
    upload_range_rows: int = 10_000
    upload_range_lease_seconds: float = 120.0
    # Processes `debtgraph worker` runs (each with its own ingestion lane); 0 = one per CPU.
    worker_processes: int = 1
    # Twenty connections kept rather than ten plus ten of overflow: the same ceiling, but an
    # overflow connection is closed as soon as it is returned to a full pool, so a load just
    # above ten opened and closed connections (a server process forked each time) for a tenth
    # of requests.
    db_pool_size: int = 20
    db_max_overflow: int = 0
    db_pool_timeout: float = 30.0
    max_body_kb: int = 1024
    # Invoice extraction (PRODUCT.md §4): time limit per PDF, and the Tesseract command for OCR.
    extraction_timeout_seconds: float = 60.0
    tesseract_cmd: str = "tesseract"
    # Billing (PRODUCT.md §8): unset URL = the deterministic sandbox gateway.
    billing_gateway_url: str | None = None
    billing_gateway_api_key: str = ""
    billing_gateway_mid: str = ""
    # Signs the gateway's callbacks (Standard Webhooks scheme); unset = callbacks refused.
    billing_callback_secret: str = ""
    # The creditor a pain.008 file collects for (sandbox values by default).
    sepa_creditor_name: str = "Tether Collections Sandbox"
    sepa_creditor_iban: str = "DE89370400440532013000"
    sepa_creditor_bic: str = "COBADEFFXXX"
    sepa_creditor_id: str = "DE98ZZZ09999999999"
    # Verification of payee (PRODUCT.md §7): the deterministic sandbox, or an HTTP service.
    vop_provider: str = "sandbox"
    vop_provider_url: str | None = None
    vop_provider_timeout_seconds: float = 10.0
    vop_provider_batch: int = 500

    @property
    def is_production(self) -> bool:
        """Whether this is a production deployment."""
        return self.env == "production"

    @property
    def introspection(self) -> str:
        """Who may introspect the schema: "true" (anyone), "operators" or "false" (nobody)."""
        if self.graphql_introspection:
            return self.graphql_introspection
        return "false" if self.is_production else "true"

    @property
    def max_document_bytes(self) -> int:
        """The size limit of one GraphQL document, in bytes of UTF-8."""
        return self.graphql_max_document_kb * 1024

    @property
    def max_body_bytes(self) -> int:
        """The size limit of a request body that is not a multipart upload, in bytes."""
        return self.max_body_kb * 1024

    @property
    def max_upload_bytes(self) -> int:
        """The upload size limit in bytes."""
        return self.max_upload_mb * 1024 * 1024

    def check(self) -> None:
        """Refuse configurations that are unsafe to serve."""
        if not isinstance(logging.getLevelName(self.log_level.upper()), int):
            raise ConfigError(
                "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR or CRITICAL, "
                f"not {self.log_level[:40]!r}."
            )
        if self.vop_provider not in ("sandbox", "http"):
            raise ConfigError("VOP_PROVIDER must be sandbox or http.")
        if self.vop_provider == "http" and not self.vop_provider_url:
            raise ConfigError("VOP_PROVIDER=http needs VOP_PROVIDER_URL.")
        if self.billing_callback_secret and not _standard_webhooks_secret(
            self.billing_callback_secret
        ):
            raise ConfigError(
                "BILLING_CALLBACK_SECRET must be a Standard Webhooks secret: whsec_ followed "
                "by base64 (as `python -c \"import base64,os; print('whsec_' + "
                'base64.b64encode(os.urandom(32)).decode())"` prints).'
            )
        if self.upload_range_rows < 1:
            raise ConfigError("UPLOAD_RANGE_ROWS must be at least 1.")
        if self.worker_processes < 0:
            raise ConfigError("WORKER_PROCESSES must be 0 (one per CPU) or more.")
        if self.vop_provider_batch < 1:
            raise ConfigError("VOP_PROVIDER_BATCH must be at least 1.")
        if self.graphql_introspection not in ("", "true", "false", "operators"):
            raise ConfigError("GRAPHQL_INTROSPECTION must be true, false or operators.")
        if self.graphql_persisted_queries not in ("off", "automatic", "enforced"):
            raise ConfigError("GRAPHQL_PERSISTED_QUERIES must be off, automatic or enforced.")
        if (
            self.graphql_persisted_queries == "enforced"
            and not self.graphql_persisted_queries_manifest
        ):
            raise ConfigError(
                "GRAPHQL_PERSISTED_QUERIES=enforced needs GRAPHQL_PERSISTED_QUERIES_MANIFEST "
                "(the JSON file of the documents allowed to run)."
            )
        if self.graphql_max_document_kb < 1 or self.graphql_apq_max_entries < 1:
            raise ConfigError(
                "GRAPHQL_MAX_DOCUMENT_KB and GRAPHQL_APQ_MAX_ENTRIES must be at least 1."
            )
        if self.is_production and (self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32):
            raise ConfigError(
                "SECRET_KEY must be set to a random value of at least 32 characters when "
                "ENV=production (the development default is refused)."
            )
        if self.is_production and self.allow_private_webhook_urls:
            # It turns the webhook guard off: deliveries could then reach the internal network.
            raise ConfigError(
                "ALLOW_PRIVATE_WEBHOOK_URLS is for tests and local development: it is refused "
                "when ENV=production (webhooks could then reach internal addresses)."
            )
        if self.is_production and self.graphql_check_compiled:
            raise ConfigError(
                "GRAPHQL_CHECK_COMPILED is for tests: it is refused when ENV=production (every "
                "query would run twice and each difference found would be kept in memory)."
            )
        if self.is_production and not self.public_base_url:
            # Without it links follow the request's Host header, which any client can set: an
            # onboarding or consent link could then point at a host of the client's choosing.
            raise ConfigError(
                "PUBLIC_BASE_URL must be set when ENV=production (links are built from it; "
                "a request's Host header is not to be trusted there)."
            )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read the settings from the environment."""
        env = os.environ if environ is None else environ
        return cls(
            env=env.get("ENV", "development"),
            database_url=env.get("DATABASE_URL") or cls.database_url,
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY") or DEV_SECRET_KEY,
            max_upload_mb=_int(env, "MAX_UPLOAD_MB", 50),
            allow_private_webhook_urls=_bool(env.get("ALLOW_PRIVATE_WEBHOOK_URLS")),
            cors_origins=_list(env.get("CORS_ORIGINS")),
            public_base_url=(env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
            upload_dir=env.get("UPLOAD_DIR") or cls.upload_dir,
            log_level=env.get("LOG_LEVEL") or "INFO",
            graphql_max_depth=_int(env, "GRAPHQL_MAX_DEPTH", 12),
            graphql_max_cost=_int(env, "GRAPHQL_MAX_COST", 10_000),
            graphql_max_aliases=_int(env, "GRAPHQL_MAX_ALIASES", 100),
            graphql_max_nodes=_int(env, "GRAPHQL_MAX_NODES", 100),
            graphql_compiled=_bool(env.get("GRAPHQL_COMPILED"), default=True),
            graphql_check_compiled=_bool(env.get("GRAPHQL_CHECK_COMPILED")),
            graphql_max_document_kb=_int(env, "GRAPHQL_MAX_DOCUMENT_KB", 64),
            graphql_introspection=_introspection(env.get("GRAPHQL_INTROSPECTION")),
            graphql_persisted_queries=(
                (env.get("GRAPHQL_PERSISTED_QUERIES") or "automatic").strip().lower()
            ),
            graphql_persisted_queries_manifest=(
                env.get("GRAPHQL_PERSISTED_QUERIES_MANIFEST") or None
            ),
            graphql_apq_max_entries=_int(env, "GRAPHQL_APQ_MAX_ENTRIES", 1000),
            graphql_apq_ttl_seconds=_int(env, "GRAPHQL_APQ_TTL", 86_400),
            access_token_ttl_seconds=_int(env, "ACCESS_TOKEN_TTL", 3600),
            refresh_token_ttl_seconds=_int(env, "REFRESH_TOKEN_TTL", 60 * 60 * 24 * 30),
            operator_token_ttl_seconds=_int(env, "OPERATOR_TOKEN_TTL", 60 * 60 * 24 * 7),
            subscription_recheck_seconds=_int(env, "SUBSCRIPTION_RECHECK_SECONDS", 30),
            ws_max_connections_per_principal=_int(env, "WS_MAX_CONNECTIONS_PER_PRINCIPAL", 10),
            ws_max_subscriptions_per_connection=_int(
                env, "WS_MAX_SUBSCRIPTIONS_PER_CONNECTION", 20
            ),
            ws_connection_init_timeout_seconds=_float(
                env, "WS_CONNECTION_INIT_TIMEOUT_SECONDS", 60
            ),
            ws_subscriber_queue_size=_int(env, "WS_SUBSCRIBER_QUEUE_SIZE", 256),
            login_max_attempts=_int(env, "LOGIN_MAX_ATTEMPTS", 5),
            login_max_attempts_per_email=_int(env, "LOGIN_MAX_ATTEMPTS_PER_EMAIL", 20),
            login_max_attempts_per_address=_int(env, "LOGIN_MAX_ATTEMPTS_PER_ADDRESS", 100),
            db_pool_size=_int(env, "DB_POOL_SIZE", 20),
            db_max_overflow=_int(env, "DB_MAX_OVERFLOW", 0),
            db_pool_timeout=_float(env, "DB_POOL_TIMEOUT", 30),
            max_body_kb=_int(env, "MAX_BODY_KB", 1024),
            extraction_timeout_seconds=_float(env, "EXTRACTION_TIMEOUT_SECONDS", 60),
            tesseract_cmd=env.get("TESSERACT_CMD") or "tesseract",
            billing_gateway_url=env.get("BILLING_GATEWAY_URL") or None,
            billing_gateway_api_key=env.get("BILLING_GATEWAY_API_KEY") or "",
            billing_gateway_mid=env.get("BILLING_GATEWAY_MID") or "",
            billing_callback_secret=env.get("BILLING_CALLBACK_SECRET") or "",
            sepa_creditor_name=env.get("SEPA_CREDITOR_NAME") or cls.sepa_creditor_name,
            sepa_creditor_iban=env.get("SEPA_CREDITOR_IBAN") or cls.sepa_creditor_iban,
            sepa_creditor_bic=env.get("SEPA_CREDITOR_BIC") or cls.sepa_creditor_bic,
            sepa_creditor_id=env.get("SEPA_CREDITOR_ID") or cls.sepa_creditor_id,
            vop_provider=(env.get("VOP_PROVIDER") or "sandbox").strip().lower(),
            vop_provider_url=env.get("VOP_PROVIDER_URL") or None,
            vop_provider_timeout_seconds=_float(env, "VOP_PROVIDER_TIMEOUT", 10),
            vop_provider_batch=_int(env, "VOP_PROVIDER_BATCH", 500),
            upload_range_rows=_int(env, "UPLOAD_RANGE_ROWS", 10_000),
            upload_range_lease_seconds=_float(env, "UPLOAD_RANGE_LEASE_SECONDS", 120),
            worker_processes=_int(env, "WORKER_PROCESSES", 1),
        )
