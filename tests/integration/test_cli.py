"""The debtgraph command, run as a newcomer would: a real process on a fresh database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from debtgraph.domain.core.database import create_engine, session_factory
from debtgraph.domain.core.secrets import hash_token, verify_password
from debtgraph.domain.creditors.models import User
from debtgraph.domain.oauth.models import ApiKey, Platform
from debtgraph.server.cli import main


def run(
    db_url: str | None, *args: str, cwd: Path | None = None, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run the command in a fresh process; ``db_url=None`` leaves DATABASE_URL unset."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "ENV")}
    if db_url is not None:
        env["DATABASE_URL"] = db_url
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "debtgraph.server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"


async def _fetch(db_url: str, stmt):  # type: ignore[no-untyped-def]
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            return (await session.scalars(stmt)).all()
    finally:
        await engine.dispose()


def test_migrate_create_admin_and_platform(db_url: str) -> None:
    assert run(db_url, "migrate").returncode == 0
    admin = run(
        db_url,
        "create-admin",
        "--email",
        "Ops@Tether.test",
        "--password",
        "s3cret",
        "--name",
        "Ops",
    )
    assert admin.returncode == 0, admin.stderr
    users = asyncio.run(_fetch(db_url, select(User)))
    assert [(u.email, u.role, u.name) for u in users] == [("ops@tether.test", "admin", "Ops")]
    assert verify_password(users[0].password_hash, "s3cret")
    assert "s3cret" not in (users[0].password_hash or "")

    created = run(
        db_url,
        "create-platform",
        "--name",
        "Acme",
        "--redirect-uri",
        "https://acme.test/cb",
        "--scope",
        "users:read",
        "--scope",
        "receivables:write",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)
    assert set(out) == {"client_id", "client_secret", "api_key"}
    # Outside production keys are test keys; live keys are only made by a production server.
    assert out["api_key"].startswith("sk_test_")
    platform = asyncio.run(_fetch(db_url, select(Platform)))[0]
    assert platform.client_id == out["client_id"]
    assert platform.allowed_scopes == ["users:read", "receivables:write"]
    assert platform.client_secret_hash == hash_token(out["client_secret"])
    keys = asyncio.run(_fetch(db_url, select(ApiKey)))
    assert [k.key_hash for k in keys] == [hash_token(out["api_key"])]


def test_create_platform_refuses_unknown_scopes_and_bad_uris(db_url: str) -> None:
    bad = run(
        db_url,
        "create-platform",
        "--name",
        "X",
        "--redirect-uri",
        "ftp://x",
        "--scope",
        "everything",
    )
    assert bad.returncode != 0
    assert "Unknown scopes: everything" in bad.stderr
    assert "https" in bad.stderr
    assert asyncio.run(_fetch(db_url, select(Platform))) == []


def test_demo_loads_every_area_once(db_url: str) -> None:
    from debtgraph.domain.debtors.models import Debtor
    from debtgraph.domain.receivables.models import Receivable

    result = run(db_url, "demo")
    assert result.returncode == 0, result.stderr
    users = asyncio.run(_fetch(db_url, select(User).where(User.email == "admin@tether.test")))
    assert len(users) == 1
    assert verify_password(users[0].password_hash, "password")
    assert "upload demo_debtors.csv: 5 valid, 2 invalid rows" in result.stdout
    debtors = asyncio.run(_fetch(db_url, select(Debtor)))
    assert sorted(d.validation_status for d in debtors) == ["invalid"] * 2 + ["valid"] * 5
    receivables = asyncio.run(_fetch(db_url, select(Receivable)))
    assert len(receivables) == 2
    assert "redirect_uri=http://localhost:3000/callback" in result.stdout
    assert "set its password (once) to sign in on the OAuth consent page: http" in result.stdout
    again = run(db_url, "demo")
    assert again.returncode == 0, again.stderr
    assert "loaded before" in again.stdout
    # The operator is left as it was: a reset (a new hash) revoked every token it had, and a
    # browser signed in as it was signed out (outside review).
    [kept] = asyncio.run(_fetch(db_url, select(User).where(User.email == "admin@tether.test")))
    assert kept.password_hash == users[0].password_hash
    assert "operator admin@tether.test kept as it was" in again.stdout
    assert len(asyncio.run(_fetch(db_url, select(Debtor)))) == 7
    assert len(asyncio.run(_fetch(db_url, select(Platform)))) == 1


def test_create_admin_refuses_an_operator_who_could_not_sign_in(db_url: str) -> None:
    # Outside review: "notanemail" was made an operator that POST /api/login refuses (422).
    for argv, message in [
        (["--email", "notanemail"], "The email field must be a valid email address."),
        (["--email", "ops@x.test", "--name", "N" * 201], "The name must be at most 200"),
    ]:
        made = run(db_url, "create-admin", "--password", "x" * 12, "--name", "Ops", *argv)
        assert made.returncode != 0
        assert message in made.stderr
    assert asyncio.run(_fetch(db_url, select(User).where(User.role == "admin"))) == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_UPLOAD_MB", "abc", "MAX_UPLOAD_MB must be an integer, not 'abc'."),
        (
            "WS_MAX_SUBSCRIPTIONS_PER_CONNECTION",
            "many",
            "WS_MAX_SUBSCRIPTIONS_PER_CONNECTION must be an integer, not 'many'.",
        ),
        ("DB_POOL_TIMEOUT", "soon", "DB_POOL_TIMEOUT must be a number, not 'soon'."),
        ("EXTRACTION_TIMEOUT_SECONDS", "nan", "must be a number, not 'nan'."),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ],
)
def test_a_bad_setting_is_named_without_a_traceback(
    db_url: str, name: str, value: str, message: str
) -> None:
    # Outside review: a bare int() of the setting ended the command with a ValueError trace.
    refused = run(db_url, "migrate", **{name: value})
    assert refused.returncode != 0
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr


def test_production_without_secret_key_refuses_to_start(db_url: str) -> None:
    env_run = subprocess.run(
        [sys.executable, "-m", "debtgraph.server.cli", "migrate"],
        env={**os.environ, "DATABASE_URL": db_url, "ENV": "production", "SECRET_KEY": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert env_run.returncode != 0
    assert "SECRET_KEY" in env_run.stderr


def test_serve_migrates_and_answers(db_url: str) -> None:
    import socket
    import time

    import httpx

    assert (
        run(
            db_url,
            "create-admin",
            "--email",
            "admin@tether.test",
            "--password",
            "password",
            "--name",
            "Admin User",
        ).returncode
        == 0
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DATABASE_URL"] = db_url
    server = subprocess.Popen(
        [sys.executable, "-m", "debtgraph.server.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        login = httpx.post(
            f"{base}/api/login", json={"email": "admin@tether.test", "password": "password"}
        )
        assert login.status_code == 200
        assert login.json()["user"] == {"id": 1, "name": "Admin User", "email": "admin@tether.test"}
        assert login.json()["token"].startswith("1|")
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_api_keys_are_live_only_in_production(db_url: str) -> None:
    created = run(
        db_url,
        "create-platform",
        "--name",
        "Acme",
        "--redirect-uri",
        "https://acme.test/cb",
        "--json",
        ENV="production",
        SECRET_KEY="s" * 40,
        PUBLIC_BASE_URL="https://api.acme.test",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["api_key"].startswith("sk_live_")
    demo = run(db_url.replace("cli.db", "demo.db"), "demo")
    assert demo.returncode == 0, demo.stderr
    assert "api_key=sk_test_" in demo.stdout


@pytest.mark.parametrize(
    "argv", [["--help"], *([name, "--help"] for name in ("serve", "create-platform", "demo"))]
)
def test_help_is_plain_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: debtgraph")
    # Docstring markup (reStructuredText literals) is not for a terminal.
    assert "``" not in out
    if argv == ["--help"]:
        assert "DATABASE_URL" in out
        assert "debtgraph.db in the current directory" in out


def test_every_command_says_which_database_it_uses(tmp_path: Path) -> None:
    server_dir, elsewhere = tmp_path / "server", tmp_path / "elsewhere"
    server_dir.mkdir()
    elsewhere.mkdir()
    migrated = run(None, "migrate", cwd=server_dir)
    assert migrated.returncode == 0, migrated.stderr
    expected = f"database sqlite+aiosqlite:///{server_dir / 'debtgraph.db'}"
    # The default is relative to the working directory: the absolute path shows where it is.
    assert expected in migrated.stderr
    assert "no such file yet" in migrated.stderr
    again = run(
        None,
        "create-admin",
        "--email",
        "a@b.test",
        "--password",
        "p",
        "--name",
        "A",
        cwd=server_dir,
    )
    assert again.returncode == 0, again.stderr
    assert expected in again.stderr
    assert "no such file yet" not in again.stderr
    # Run from another directory, the command says it is about to create another database.
    stray = run(
        None,
        "create-platform",
        "--name",
        "X",
        "--redirect-uri",
        "https://x.test/cb",
        cwd=elsewhere,
    )
    assert stray.returncode == 0, stray.stderr
    assert f"database sqlite+aiosqlite:///{elsewhere / 'debtgraph.db'}" in stray.stderr
    assert "no such file yet: a new, empty database is created there" in stray.stderr
    assert "api_key" in stray.stdout
    assert "database" not in stray.stdout
    # A server URL's password is never printed.
    unreachable = run("postgresql+asyncpg://ops:hunter2@127.0.0.1:1/debtgraph", "migrate")
    assert unreachable.returncode != 0
    assert "database postgresql+asyncpg://ops:***@127.0.0.1:1/debtgraph" in unreachable.stderr
    assert "hunter2" not in unreachable.stderr
