"""The login throttles count an attempt before argon2, atomically: a burst cannot outrun them.

Each test fires 60 concurrent wrong passwords for one email at the real app and counts the argon2
verifications that actually ran (by wrapping ``verify_password``), on the in-memory throttle and,
when ``REDIS_URL`` is set, on the Redis one.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from debtgraph.domain.core import secrets
from debtgraph.domain.core.throttle import InMemoryThrottle, RedisThrottle, Throttle
from tests.conftest import REDIS_URL
from tests.integration.test_oauth import consent_form, creditor

BURST = 60
LIMIT = 5


@pytest.fixture(params=["memory", "redis"])
async def throttle(request: Any, runtime: Any, clock: Any) -> Any:
    """The app's throttle, replaced by the backend under test."""
    if request.param == "redis":
        if not REDIS_URL:
            pytest.skip("REDIS_URL is not set")
        chosen: Throttle = RedisThrottle(REDIS_URL, LIMIT, 60)
    else:
        chosen = InMemoryThrottle(clock, LIMIT, 60)
    previous = runtime.services.throttle
    runtime.services.throttle = chosen
    yield chosen
    runtime.services.throttle = previous
    if isinstance(chosen, RedisThrottle):
        await chosen.close()


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Counts real argon2 verifications made by the login and consent sign-in."""
    calls = 0
    lock = threading.Lock()
    real = secrets.verify_password

    def counting(stored: str | None, password: str) -> bool:
        nonlocal calls
        with lock:
            calls += 1
        return real(stored, password)

    monkeypatch.setattr("debtgraph.resolvers.auth.verify_password", counting)
    monkeypatch.setattr("debtgraph.resolvers.oauth.verify_password", counting)
    return lambda: calls


async def test_acquire_lets_exactly_the_limit_through(throttle: Throttle) -> None:
    answers = await asyncio.gather(*(throttle.acquire("burst") for _ in range(BURST)))
    assert answers.count(None) == LIMIT
    assert all(isinstance(a, int) and 1 <= a <= 60 for a in answers if a is not None)
    await throttle.clear("burst")
    assert await throttle.acquire("burst") is None


async def test_concurrent_wrong_logins_run_at_most_the_limit_of_verifications(
    client: httpx.AsyncClient, admin: Any, throttle: Throttle, verifications: Callable[[], int]
) -> None:
    body = {"email": "admin@tether.test", "password": "wrong password"}
    responses = await asyncio.gather(*(client.post("/api/login", json=body) for _ in range(BURST)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {422: LIMIT, 429: BURST - LIMIT}, statuses
    assert verifications() == LIMIT
    # The right password is refused too while the window lasts.
    again = await client.post("/api/login", json={**body, "password": "password"})
    assert again.status_code == 429


async def test_concurrent_wrong_consent_sign_ins_run_at_most_the_limit_of_verifications(
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    throttle: Throttle,
    verifications: Callable[[], int],
) -> None:
    acme = await make_platform()
    await creditor(client, db, acme.api_key)
    form = await consent_form(client, acme, scope="users:read", password="wrong password")
    responses = await asyncio.gather(
        *(client.post("/oauth/consent", data=form) for _ in range(BURST))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {401: LIMIT, 429: BURST - LIMIT}, statuses
    assert verifications() == LIMIT
    # The page's 429 says when to try again, as every other 429 of the service does.
    refused = [r for r in responses if r.status_code == 429]
    assert all(int(r.headers["retry-after"]) > 0 for r in refused)
