"""``Idempotency-Key`` on every POST of /v1/* (Stripe semantics) and ``Cleavr-Version``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from debtgraph.domain.core.idempotency import IdempotencyKey
from debtgraph.domain.creditors.models import User
from debtgraph.domain.receivables.models import Receivable
from tests.integration.cleavr_support import bearer, count, create_user
from tests.integration.test_receivables import receivable_payload


async def test_same_key_same_body_replays_the_stored_response(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    headers = {**bearer(acme.api_key), "Idempotency-Key": "k-1"}
    first = await client.post("/v1/users", json={"email": "a@x.test"}, headers=headers)
    assert first.status_code == 201
    # Same JSON, other key order and spacing: the same request.
    again = await client.post(
        "/v1/users",
        content=b'{ "email" : "a@x.test" }',
        headers={**headers, "content-type": "application/json"},
    )
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(db, User) == 1


async def test_a_replay_is_the_first_answer_byte_for_byte(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    # Stored as a JSON value, PostgreSQL's JSONB gave the keys back in its own order, the
    # client's metadata included (review): a client hashing or signing answers saw another.
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    payload = receivable_payload(uid)
    payload["metadata"] = {"zeta": 1, "alpha": {"yy": 2, "b": 3}, "middle": "m"}
    headers = {**bearer(acme.api_key), "Idempotency-Key": "k-bytes"}
    first = await client.post("/v1/receivables", json=payload, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post("/v1/receivables", json=payload, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["content-type"] == first.headers["content-type"]
    assert list(again.json()["metadata"]) == ["zeta", "alpha", "middle"]
    assert await count(db, Receivable) == 1
    # Kept as the text sent, which every database gives back as it was (SQLite's JSON did by
    # chance for an object, PostgreSQL's JSONB does not).
    async with db() as session:
        stored = await session.scalar(
            select(IdempotencyKey.response_body).where(IdempotencyKey.key == "k-bytes")
        )
    assert stored == first.content.decode()


async def test_same_key_other_body_or_path_is_409(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    headers = {**bearer(acme.api_key), "Idempotency-Key": "k-2"}
    await client.post("/v1/users", json={"email": "a@x.test"}, headers=headers)
    other = await client.post("/v1/users", json={"email": "b@x.test"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reuse"
    elsewhere = await client.post("/v1/receivables", json={}, headers=headers)
    assert elsewhere.status_code == 409
    assert await count(db, User) == 1


async def test_errors_are_replayed_too_and_keys_are_per_caller(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    other = await make_platform("Other")
    bad = {"email": "nope"}
    headers = {**bearer(acme.api_key), "Idempotency-Key": "k-3"}
    first = await client.post("/v1/users", json=bad, headers=headers)
    replay = await client.post("/v1/users", json=bad, headers=headers)
    assert first.status_code == replay.status_code == 400
    assert replay.json() == first.json()
    # The same key from another platform is its own key.
    theirs = await client.post(
        "/v1/users",
        json={"email": "a@x.test"},
        headers={**bearer(other.api_key), "Idempotency-Key": "k-3"},
    )
    assert theirs.status_code == 201


async def test_a_request_in_flight_makes_a_concurrent_one_409(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme = await make_platform()
    from debtgraph.domain.core.idempotency import request_fingerprint

    body = b'{"email": "a@x.test"}'
    async with db() as session:
        # What a first request holds while it runs: the claim without a response.
        session.add(
            IdempotencyKey(
                principal=f"platform:{acme.platform.id}",
                key="k-4",
                method="POST",
                path="/v1/users",
                request_hash=request_fingerprint("POST", "/v1/users", body),
                created_at=clock.now(),
                expires_at=clock.now() + timedelta(hours=24),
            )
        )
        await session.commit()
    response = await client.post(
        "/v1/users",
        content=body,
        headers={
            **bearer(acme.api_key),
            "Idempotency-Key": "k-4",
            "content-type": "application/json",
        },
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert await count(db, User) == 0


async def test_keys_expire_after_24_hours(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    headers = {**bearer(acme.api_key), "Idempotency-Key": "k-5"}
    payload = receivable_payload(uid)
    first = await client.post("/v1/receivables", json=payload, headers=headers)
    assert first.status_code == 201
    clock.advance(timedelta(hours=23))
    assert (await client.post("/v1/receivables", json=payload, headers=headers)).json()[
        "id"
    ] == first.json()["id"]
    clock.advance(timedelta(hours=1))
    fresh = await client.post(
        "/v1/receivables", json={**payload, "force_proceed": True}, headers=headers
    )
    assert fresh.status_code == 201
    assert fresh.json()["id"] != first.json()["id"]
    assert await count(db, Receivable) == 2


async def test_every_post_route_honours_the_key(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    rid = (
        await client.post(
            "/v1/receivables", json=receivable_payload(uid), headers=bearer(acme.api_key)
        )
    ).json()["id"]
    posts = [
        (f"/v1/receivables/{rid}/contacts", {"email": "c@x.test"}),
        (f"/v1/receivables/{rid}/cancel", {"reason": "paid_directly"}),
        ("/v1/commission/calculate", {"amount": 10, "due_date": "2026-01-01"}),
    ]
    for path, body in posts:
        headers = {**bearer(acme.api_key), "Idempotency-Key": f"key-{path}"}
        first = await client.post(path, json=body, headers=headers)
        second = await client.post(path, json=body, headers=headers)
        assert second.headers.get("idempotent-replayed") == "true", path
        assert second.json() == first.json()
    async with db() as session:
        keys = (await session.scalars(select(IdempotencyKey))).all()
    assert len(keys) == 3


async def test_overlong_key_is_refused(client: httpx.AsyncClient, make_platform: Any) -> None:
    acme = await make_platform()
    response = await client.post(
        "/v1/users",
        json={"email": "a@x.test"},
        headers={**bearer(acme.api_key), "Idempotency-Key": "k" * 256},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"


@pytest.mark.parametrize("version", [None, "2026-01-02"])
async def test_known_or_absent_version_is_accepted(
    client: httpx.AsyncClient, make_platform: Any, version: str | None
) -> None:
    acme = await make_platform()
    headers = bearer(acme.api_key)
    if version:
        headers["Cleavr-Version"] = version
    response = await client.get("/v1/receivables", headers=headers)
    assert response.status_code == 200
    assert response.headers["cleavr-version"] == "2026-01-02"


async def test_unknown_version_is_400_and_changes_nothing(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    headers = {**bearer(acme.api_key), "Cleavr-Version": "2025-01-01"}
    listing = await client.get("/v1/receivables", headers=headers)
    assert listing.status_code == 400
    assert listing.json()["error"]["code"] == "invalid_version"
    created = await client.post("/v1/users", json={"email": "a@x.test"}, headers=headers)
    assert created.status_code == 400
    assert await count(db, User) == 0
