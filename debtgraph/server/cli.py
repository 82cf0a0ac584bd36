"""The ``debtgraph`` command: serve, worker, migrate, create-admin, create-platform, demo,
persisted-queries."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from debtgraph.settings import ConfigError, Settings

# Each command imports what it runs (the app, uvicorn, arq, Alembic) inside its function, so
# `debtgraph --help` and the small commands start without loading the whole server.

DESCRIPTION = """\
debtgraph: the debt-recovery API (REST and GraphQL) and its management commands.

Every command works on the database named by DATABASE_URL (default: the SQLite file
debtgraph.db in the current directory) and prints on stderr which one it uses. Run the
management commands with the same DATABASE_URL, or from the same directory, as the server:
otherwise they write to another database and the server will not know what they created."""


def describe_database(url: str) -> str:
    """The database a URL names, for people: password hidden, a SQLite path made absolute."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SystemExit("debtgraph: DATABASE_URL is not a valid database URL") from None
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database.startswith("file:"):
        return parsed.render_as_string(hide_password=True)
    if database in ("", ":memory:"):
        return f"{parsed.drivername} in memory (gone when the command ends)"
    # SQLite resolves a relative path against the working directory: show where it lands.
    path = Path(database).absolute()
    shown = f"{parsed.drivername}:///{path}"
    if not path.exists():
        shown += " (no such file yet: a new, empty database is created there)"
    return shown


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
        settings.check()
    except ConfigError as exc:
        raise SystemExit(f"debtgraph: {exc}") from None
    print(f"debtgraph: database {describe_database(settings.database_url)}", file=sys.stderr)
    return settings


def cmd_migrate(_: argparse.Namespace) -> int:
    """Apply every pending migration."""
    from debtgraph.domain.migrations.runner import upgrade_blocking

    upgrade_blocking(_settings().database_url)
    print("migrations applied")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate once, then serve HTTP and WebSocket from ``--workers`` processes on one port."""
    import uvicorn

    from debtgraph.domain.migrations.runner import upgrade_blocking
    from debtgraph.server.logging import configure_logging

    settings = _settings()
    workers = args.workers
    if workers < 1:
        raise SystemExit("debtgraph: --workers must be at least 1")
    if workers > 1 and not settings.redis_url:
        # Without Redis every process has its own event bus, job runner and sign-in throttle:
        # a subscriber on one process would never hear an event raised on another.
        raise SystemExit(
            f"debtgraph: --workers {workers} needs REDIS_URL: the API processes share events "
            "(subscriptions), background jobs and sign-in throttles through Redis. "
            "Set REDIS_URL and run `debtgraph worker`, or serve with --workers 1."
        )
    if workers > 1 and args.reload:
        raise SystemExit("debtgraph: --reload serves one process; drop --workers or --reload")
    # Before any process starts: N processes must not race to migrate the same database.
    upgrade_blocking(settings.database_url)
    configure_logging(settings.log_level)
    uvicorn.run(
        # A factory by import string: each worker process builds its own app (and pools).
        "debtgraph.server.asgi:served_app",
        factory=True,
        host=args.host,
        port=args.port,
        reload=args.reload,
        workers=workers,
        log_config=None,
        # The app logs one access line per request itself, with its request id and duration.
        access_log=False,
        # X-Forwarded-Proto/-For are believed only from these addresses (comma-separated,
        # "*" for any): links built from the request must not follow a client's claims.
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1",
        # Events are a few hundred bytes of JSON: compressing each for each socket costs more
        # CPU (and a zlib state per connection) than the bytes it saves.
        ws_per_message_deflate=False,
        # A WebSocket message is a JSON body like any other (PRODUCT.md §12): uvicorn's default
        # (16 MiB) let anonymous sockets each have a frame buffered and parsed before any limit
        # applied; past MAX_BODY_KB the socket is closed (1009) before the rest is read.
        ws_max_size=settings.max_body_bytes,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run arq worker processes for the background tasks."""
    from debtgraph.server.logging import configure_logging
    from debtgraph.server.worker import run_processes

    settings = _settings()
    configure_logging(settings.log_level)
    processes = settings.worker_processes if args.processes is None else args.processes
    return run_processes(settings, processes)


def cmd_create_admin(args: argparse.Namespace) -> int:
    """Create (or reset the password of) an operator."""
    from debtgraph.server.commands import create_admin

    user_id = asyncio.run(create_admin(_settings(), args.email, args.password, args.name))
    print(f"operator {args.email} ready (id {user_id})")
    return 0


def cmd_create_platform(args: argparse.Namespace) -> int:
    """Register a platform; its secrets are printed once."""
    from debtgraph.server.commands import create_platform

    created = asyncio.run(
        create_platform(_settings(), args.name, args.redirect_uri, args.scope or None)
    )
    if args.json:
        print(json.dumps(created))
    else:
        print(f"client_id:     {created['client_id']}")
        print(f"client_secret: {created['client_secret']}")
        print(f"api_key:       {created['api_key']}")
        print("These secrets are shown once; store them now.")
    return 0


def cmd_demo(_: argparse.Namespace) -> int:
    """Load demo data, including the seed's admin@tether.test / password operator."""
    from debtgraph.server.demo import load_demo

    for line in asyncio.run(load_demo(_settings())):
        print(line)
    return 0


def cmd_persisted_queries(args: argparse.Namespace) -> int:
    """Write the manifest of GRAPHQL_PERSISTED_QUERIES=enforced from a folder of documents."""
    from debtgraph.schema import schema
    from debtgraph.schema.persisted import build_manifest

    folder = Path(args.folder)
    if not folder.is_dir():
        raise SystemExit(f"debtgraph: {folder} is not a folder")
    manifest, problems = build_manifest(folder, schema._schema)
    for problem in problems:
        print(f"debtgraph: {problem}", file=sys.stderr)
    if problems:
        print("debtgraph: no manifest written: fix the documents above", file=sys.stderr)
        return 1
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{len(manifest)} documents written to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="debtgraph",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="apply migrations and serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--reload", action="store_true")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY") or 1),
        help="API processes behind the one port (default: WEB_CONCURRENCY or 1; "
        "more than 1 needs REDIS_URL)",
    )
    serve.set_defaults(fn=cmd_serve)

    worker = sub.add_parser("worker", help="run background jobs (needs REDIS_URL)")
    worker.add_argument(
        "--processes",
        type=int,
        default=None,
        help="worker processes, each ingesting one range at a time "
        "(default WORKER_PROCESSES, 1; 0 = one per CPU)",
    )
    worker.set_defaults(fn=cmd_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(fn=cmd_migrate)

    admin = sub.add_parser("create-admin", help="create an operator")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--name", required=True)
    admin.set_defaults(fn=cmd_create_admin)

    platform = sub.add_parser("create-platform", help="register a platform (OAuth client)")
    platform.add_argument("--name", required=True, help="the platform's display name")
    platform.add_argument(
        "--redirect-uri", action="append", required=True, help="repeatable; https or localhost"
    )
    platform.add_argument("--scope", action="append", help="repeatable; default: every scope")
    platform.add_argument("--json", action="store_true", help="print one JSON object")
    platform.set_defaults(fn=cmd_create_platform)

    sub.add_parser("demo", help="load demo data").set_defaults(fn=cmd_demo)

    persisted = sub.add_parser(
        "persisted-queries",
        help="build the manifest of registered GraphQL documents (for enforced mode)",
        description="Every *.graphql file under FOLDER is one document, hashed as it is sent "
        "(SHA-256 of its UTF-8 text). Documents that do not validate against the schema are "
        "listed and nothing is written.",
    )
    persisted.add_argument("folder")
    persisted.add_argument("--output", "-o", default="-", help="the JSON file (default: stdout)")
    persisted.set_defaults(fn=cmd_persisted_queries)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
