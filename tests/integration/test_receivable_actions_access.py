"""Who may act on a receivable over REST (``/v1/receivables/{id}/…``), and the neighbouring
reads and writes an audit found untested: each refusal in the seed's error shape
(``{"error": {"code", "message"}}``, PRODUCT.md §1) and with nothing written, which the same
request from an allowed caller then shows could have been seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from debtgraph.domain.webhooks.models import Webhook
from tests.integration.cleavr_support import bearer
from tests.integration.test_mutation_access import (
    World,
    changed_tables,
    platform_webhook,
    snapshot,
    world,  # noqa: F401 - the fixture w reads
)
from tests.integration.test_users import UNAUTH
from tests.integration.uploads_support import UNAUTH as OPERATOR_UNAUTH

pytestmark = pytest.mark.usefixtures("clock")

CHALLENGE = 'Bearer realm="debtgraph"'


def missing_scope(scope: str) -> dict[str, Any]:
    """The 403 body of a token without ``scope``."""
    message = f"This operation requires the '{scope}' scope."
    return {"error": {"code": "insufficient_scope", "message": message}}


def not_found(resource: str) -> dict[str, Any]:
    return {"error": {"code": "not_found", "message": f"{resource} not found."}}


@pytest.fixture
async def w(world: World) -> World:  # noqa: F811 - the imported fixture, by name
    """test_mutation_access's world (its fixture, imported above)."""
    return world


@dataclass(frozen=True)
class Action:
    """A creditor's REST action on the receivable, the state it needs, and its success."""

    name: str
    method: str
    suffix: str
    body: dict[str, Any]
    status: int = 200
    state: dict[str, Any] = field(default_factory=dict)

    async def send(
        self, w: World, headers: dict[str, str], body: dict[str, Any] | None = None
    ) -> httpx.Response:
        return await w.client.request(
            self.method,
            f"/v1/receivables/{w.rid}{self.suffix}",
            json=self.body if body is None else body,
            headers=headers,
        )


ACTIONS = {
    a.name: a
    for a in (
        Action("patch", "PATCH", "", {"metadata": {"order": "43"}}),
        Action("cancel", "POST", "/cancel", {"reason": "business_decision"}),
        Action("contacts", "POST", "/contacts", {"email": "new@debtor.test"}, 201),
        Action(
            "evidence", "POST", "/evidence", {"statement": "Signed delivery note"},
            state={"status": "evidence_requested"},
        ),
        Action(
            "partial-payment", "POST", "/partial-payment", {"action": "continue_recovery"},
            state={
                "status": "payment_received",
                "awaiting_decision": True,
                "amount_recovered": Decimal("200.00"),
            },
        ),
    )
}  # fmt: skip


async def refused_then_allowed(
    w: World,
    action: Action,
    headers: dict[str, str],
    expected: tuple[int, dict[str, Any]],
    allowed: dict[str, str],
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    """The refusal (status, and the body when ``expected`` gives one) changes nothing; the
    allowed caller's request does."""
    if action.state:
        await w.set_receivable(**action.state)
    before = await snapshot(w.db)
    refused = await action.send(w, headers, body)
    status, error = expected
    assert refused.status_code == status, refused.text
    if error:
        assert refused.json() == error
    after = await snapshot(w.db)
    assert changed_tables(before, after) == [], action.name
    done = await action.send(w, allowed)
    assert done.status_code == action.status, done.text
    assert changed_tables(after, await snapshot(w.db)), f"{action.name} wrote nothing"
    return refused


@pytest.mark.parametrize("name", list(ACTIONS))
async def test_anonymous_is_401_and_writes_nothing(w: World, name: str) -> None:
    refused = await refused_then_allowed(
        w, ACTIONS[name], {}, (401, UNAUTH), bearer(w.acme.api_key)
    )
    assert refused.headers["www-authenticate"] == CHALLENGE


@pytest.mark.parametrize("name", list(ACTIONS))
async def test_token_without_receivables_write_is_403_and_writes_nothing(
    w: World, name: str
) -> None:
    reader = bearer(await w.token("users:read receivables:read"))
    writer = bearer(await w.token("receivables:write"))
    refused = await refused_then_allowed(
        w, ACTIONS[name], reader, (403, missing_scope("receivables:write")), writer
    )
    assert refused.headers["www-authenticate"] == (
        f'{CHALLENGE}, error="insufficient_scope", scope="receivables:write"'
    )


@pytest.mark.parametrize("who", ["other_platform", "stranger"])
@pytest.mark.parametrize("name", list(ACTIONS))
async def test_another_tenant_gets_404_and_writes_nothing(w: World, name: str, who: str) -> None:
    await refused_then_allowed(
        w,
        ACTIONS[name],
        await w.headers(who),
        (404, not_found("Receivable")),
        bearer(w.acme.api_key),
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "required"),
        ({"notes": "no action"}, "required"),
        ({"action": "give_up"}, "invalid_choice"),
        ({"action": "CONTINUE_RECOVERY"}, "invalid_choice"),  # GraphQL's enum, not the seed's
        ({"action": ""}, "invalid_choice"),
        ({"action": ["continue_recovery"]}, "invalid_type"),
    ],
    ids=["empty", "notes-only", "unknown", "graphql-spelling", "blank", "list"],
)
async def test_partial_payment_needs_a_documented_action(
    w: World, body: dict[str, Any], code: str
) -> None:
    key = bearer(w.acme.api_key)
    refused = await refused_then_allowed(w, ACTIONS["partial-payment"], key, (400, {}), key, body)
    error = refused.json()["error"]
    assert (error["field"], error["code"]) == ("action", code), error
    if code == "invalid_choice":
        assert error["message"] == "action must be one of: continue_recovery, mark_complete."
    assert error["details"]["errors"][0]["field"] == "action"


# --- Onboarding status and requirements -------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/onboarding-status", "/requirements"])
async def test_user_reads_need_users_read_and_an_id_in_reach(w: World, suffix: str) -> None:
    path = f"/v1/users/{w.uid}{suffix}"
    without = bearer(await w.token("receivables:read receivables:write"))
    refused = await w.client.get(path, headers=without)
    assert (refused.status_code, refused.json()) == (403, missing_scope("users:read"))
    assert refused.headers["www-authenticate"] == (
        f'{CHALLENGE}, error="insufficient_scope", scope="users:read"'
    )
    reader = bearer(await w.token("users:read"))
    assert (await w.client.get(path, headers=reader)).status_code == 200
    key = bearer(w.acme.api_key)
    for unknown in ("usr_doesnotexist", "usr_", "12345", "x" * 300):
        missing = await w.client.get(f"/v1/users/{unknown}{suffix}", headers=key)
        assert (missing.status_code, missing.json()) == (404, not_found("User")), unknown
    # Another platform's creditor is absent to this one.
    foreign = await w.client.get(path, headers=bearer(w.other.api_key))
    assert (foreign.status_code, foreign.json()) == (404, not_found("User"))
    anonymous = await w.client.get(path)
    assert (anonymous.status_code, anonymous.json()) == (401, UNAUTH)


# --- GET /v1/receivables/{id} ---------------------------------------------------------------


@pytest.mark.parametrize(
    "rid",
    [
        "rcv_doesnotexist",
        "rcv_",
        "usr_x",
        "12345",
        "UmVjZWl2YWJsZTpyY3Zfbm9wZQ==",
        "é" * 3,
        "x" * 300,
    ],
    ids=["unknown", "bare-prefix", "user-prefix", "digits", "relay-id", "non-ascii", "long"],
)
async def test_unknown_or_malformed_receivable_id_is_404(w: World, rid: str) -> None:
    response = await w.client.get(f"/v1/receivables/{rid}", headers=bearer(w.acme.api_key))
    assert (response.status_code, response.json()) == (404, not_found("Receivable"))


async def test_the_receivable_itself_is_found(w: World) -> None:
    response = await w.client.get(f"/v1/receivables/{w.rid}", headers=bearer(w.acme.api_key))
    assert response.status_code == 200
    assert response.json()["id"] == w.rid


# --- POST /v1/webhooks/{id}/rotate-secret ----------------------------------------------------


async def _secrets(w: World) -> list[tuple[str, str, str | None]]:
    async with w.db() as session:
        rows = (await session.execute(select(Webhook.public_id, Webhook.secret_encrypted,
                                             Webhook.previous_secret_encrypted))).all()  # fmt: skip
    return sorted((r[0], r[1], r[2]) for r in rows)


@pytest.mark.parametrize("target", ["unknown", "deleted", "other-platform"])
async def test_a_refused_rotation_leaves_the_secret_alone(w: World, target: str) -> None:
    key = bearer(w.acme.api_key)
    hook = await platform_webhook(w)
    caller, hook_id = key, hook
    if target == "unknown":
        hook_id = "whk_doesnotexist"
    elif target == "deleted":
        assert (await w.client.delete(f"/v1/webhooks/{hook}", headers=key)).status_code == 204
    else:
        caller = bearer(w.other.api_key)
    before, state = await _secrets(w), await snapshot(w.db)
    refused = await w.client.post(f"/v1/webhooks/{hook_id}/rotate-secret", headers=caller)
    assert (refused.status_code, refused.json()) == (404, not_found("Webhook"))
    assert await _secrets(w) == before
    assert changed_tables(state, await snapshot(w.db)) == []
    if target == "other-platform":
        # The owner's rotation does change it: the comparison could fail.
        rotated = await w.client.post(f"/v1/webhooks/{hook}/rotate-secret", headers=key)
        assert rotated.status_code == 200
        assert await _secrets(w) != before


# --- POST /api/logout is the operator's ------------------------------------------------------


@pytest.mark.parametrize("who", ["platform", "creditor"])
async def test_logout_refuses_platform_keys_and_creditor_tokens(w: World, who: str) -> None:
    headers = await w.headers(who)
    before = await snapshot(w.db)
    response = await w.client.post("/api/logout", headers=headers)
    assert (response.status_code, response.json()) == (401, OPERATOR_UNAUTH)
    assert changed_tables(before, await snapshot(w.db)) == []
    # Nothing was revoked: the key or token still works, and so does the operator's.
    assert (await w.client.get(f"/v1/users/{w.uid}", headers=headers)).status_code == 200
    assert (await w.client.get("/api/user", headers=w.admin)).status_code == 200
