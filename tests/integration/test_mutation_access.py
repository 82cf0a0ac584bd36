"""Who may run each GraphQL mutation (PRODUCT.md §1), and that every refusal writes nothing.

One table of mutations, each with the arrangement that makes its input valid, so a refusal is a
refusal of the caller or of the input alone: the same input run by an allowed caller changes the
database, which is what makes "nothing was written" a check that can fail. A refusal is compared
against a snapshot of every table, not a count of one.

- anonymous: a top-level ``UNAUTHENTICATED``, ``data`` null;
- a platform key or a creditor token on an operator mutation: the payload's
  ``userErrors: [{field: null, code: "unauthenticated"}]`` (as test_receivables_graphql pins);
- another tenant: ``not_found`` (never told apart from absent);
- a creditor token without the scope: ``insufficient_scope`` (as test_reach pins);
- bad input: ``userErrors`` with the field, or ``BAD_USER_INPUT`` when the schema refuses the
  variables before anything runs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from debtgraph.domain.creditors.models import User
from debtgraph.domain.debtors.models import Debtor
from debtgraph.domain.models import Base
from debtgraph.domain.payments import billing as billing_service
from debtgraph.domain.payments.models import BillingAttempt
from debtgraph.domain.receivables.models import Receivable
from debtgraph.domain.webhooks.models import Webhook, WebhookDelivery
from tests.conftest import gql
from tests.integration.billing_support import (
    attempts,
    billing_upload,
    debtors_of,
    gid,
    pain002,
    start,
)
from tests.integration.cleavr_support import bearer, complete_user, create_user, creditor_token
from tests.integration.test_receivables import receivable_payload
from tests.integration.uploads_support import csv_text, upload
from tests.integration.webhook_support import Receiver

pytestmark = pytest.mark.usefixtures("clock")

ALL_SCOPES = (
    "users:read users:write receivables:read receivables:write webhooks:read webhooks:write "
    "reports:read"
)
READ_SCOPES = "users:read receivables:read webhooks:read reports:read"
# A signed-in caller that is not an operator, on an operator mutation.
OPERATOR_ONLY = [{"field": None, "code": "unauthenticated"}]
NOT_FOUND = [{"field": None, "code": "not_found"}]
INSUFFICIENT_SCOPE = [{"field": None, "code": "insufficient_scope"}]
INVALID_TRANSITION = [{"field": None, "code": "invalid_transition"}]


@dataclass
class World:
    """Platform A with its active creditor and one pending receivable; platform B with its own
    creditor; the operator. Anything a case needs beyond that, the case arranges."""

    client: httpx.AsyncClient
    db: Any
    clock: Any
    drain: Callable[[], Awaitable[None]]
    admin: dict[str, str]
    acme: Any
    other: Any
    uid: str
    user_id: int
    rid: str
    stranger_id: int
    stack: contextlib.AsyncExitStack
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def rgid(self) -> str:
        """The receivable's Relay id."""
        return gid("Receivable", self.rid)

    async def token(self, scopes: str, user_id: int | None = None) -> str:
        """A creditor token (A's creditor unless ``user_id`` names another), made once."""
        user_id = user_id or self.user_id
        key = f"{user_id}:{scopes}"
        if key not in self.tokens:
            platform = self.acme if user_id == self.user_id else self.other
            self.tokens[key] = await creditor_token(
                self.db, self.clock, platform.platform.id, user_id, scopes
            )
        return self.tokens[key]

    async def headers(self, who: str) -> dict[str, str]:
        """The Authorization header of a kind of caller."""
        if who == "anonymous":
            return {}
        if who == "operator":
            return self.admin
        if who == "platform":  # the platform that created the creditor: every scope over it
            return bearer(self.acme.api_key)
        if who == "other_platform":
            return bearer(self.other.api_key)
        if who == "creditor":
            return bearer(await self.token(ALL_SCOPES))
        if who == "reader":  # the creditor itself, without any write scope
            return bearer(await self.token(READ_SCOPES))
        if who == "stranger":  # another platform's creditor, every scope over itself
            return bearer(await self.token(ALL_SCOPES, self.stranger_id))
        raise AssertionError(who)

    async def set_receivable(self, **values: Any) -> None:
        """Put the receivable in a state directly (as test_every_action_from_every_status)."""
        async with self.db() as session:
            await session.execute(
                update(Receivable).where(Receivable.public_id == self.rid).values(**values)
            )
            await session.commit()


async def _user_id(db: Any, public_id: str) -> int:
    async with db() as session:
        found = await session.scalar(select(User.id).where(User.public_id == public_id))
    assert found is not None
    return int(found)


async def new_world(
    client: httpx.AsyncClient,
    db: Any,
    clock: Any,
    drain: Any,
    admin_headers: dict[str, str],
    make_platform: Any,
    stack: contextlib.AsyncExitStack,
) -> World:
    """The World, arranged through the API; ``stack`` closes what cases start (receivers)."""
    acme, other = await make_platform(), await make_platform("Other")
    uid = (await create_user(client, acme.api_key))["id"]
    stranger = (await create_user(client, other.api_key, complete_user("eve@other.test")))["id"]
    created = await client.post(
        "/v1/receivables", json=receivable_payload(uid), headers=bearer(acme.api_key)
    )
    assert created.status_code == 201, created.text
    return World(
        client=client,
        db=db,
        clock=clock,
        drain=drain,
        admin=admin_headers,
        acme=acme,
        other=other,
        uid=uid,
        user_id=await _user_id(db, uid),
        rid=created.json()["id"],
        stranger_id=await _user_id(db, stranger),
        stack=stack,
    )


@pytest.fixture
async def world(
    client: httpx.AsyncClient,
    db: Any,
    clock: Any,
    drain: Any,
    admin_headers: dict[str, str],
    make_platform: Any,
) -> AsyncIterator[World]:
    async with contextlib.AsyncExitStack() as stack:
        yield await new_world(client, db, clock, drain, admin_headers, make_platform, stack)


async def snapshot(db: Any) -> dict[str, list[str]]:
    """Every row of every table: what "nothing was written" compares."""
    state: dict[str, list[str]] = {}
    async with db() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            state[table.name] = sorted(repr(tuple(row)) for row in rows)
    return state


def changed_tables(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return [name for name in before if before[name] != after[name]]


# --- Arrangements: each returns the input an allowed caller runs successfully ---------------


async def _suspend_input(w: World) -> dict[str, Any]:
    return {"id": w.uid}


async def _reinstate_input(w: World) -> dict[str, Any]:
    suspended = await run(w, CASES["userSuspend"], {"id": w.uid}, w.admin)
    assert suspended["data"]["userSuspend"]["userErrors"] == []
    return {"id": gid("User", w.uid)}


async def _update_input(w: World) -> dict[str, Any]:
    return {"id": w.rgid, "metadata": {"order": "43"}}


async def _cancel_input(w: World) -> dict[str, Any]:
    return {"id": w.rgid, "reason": "BUSINESS_DECISION"}


async def _contact_input(w: World) -> dict[str, Any]:
    return {"receivableId": w.rgid, "contact": {"email": "new@debtor.test"}}


async def _evidence_input(w: World) -> dict[str, Any]:
    await w.set_receivable(status="evidence_requested")
    return {"id": w.rgid, "statement": "Signed delivery note"}


async def _decision_input(w: World) -> dict[str, Any]:
    await w.set_receivable(
        status="payment_received", awaiting_decision=True, amount_recovered=Decimal("200.00")
    )
    return {"id": w.rgid, "action": "CONTINUE_RECOVERY"}


async def _start_input(w: World) -> dict[str, Any]:
    return {"id": w.rgid}


async def _payment_input(w: World) -> dict[str, Any]:
    await w.set_receivable(status="in_process")
    return {"id": w.rgid, "amount": "200.00"}


async def _payout_input(w: World) -> dict[str, Any]:
    await w.set_receivable(status="payment_received", amount_recovered=Decimal("1200.00"))
    return {"id": w.rgid}


async def _dispute_input(w: World) -> dict[str, Any]:
    await w.set_receivable(status="in_process")
    return {"id": w.rgid, "reason": "never delivered"}


async def _evidence_request_input(w: World) -> dict[str, Any]:
    await w.set_receivable(status="disputed")
    return {"id": w.rgid, "reason": "send the delivery note"}


async def _uploaded(w: World) -> int:
    """An upload of three debtors, the first with a bad IBAN (row 2)."""
    response = await upload(w.client, w.admin, csv_text(3, bad_every=3))
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


async def _bad_debtor(w: World) -> int:
    upload_id = await _uploaded(w)
    async with w.db() as session:
        found = await session.scalar(
            select(Debtor.id).where(Debtor.upload_id == upload_id, Debtor.row_number == 2)
        )
    assert found is not None
    return int(found)


async def _upload_validate_input(w: World) -> dict[str, Any]:
    return {"uploadId": gid("Upload", await _uploaded(w))}


async def _debtor_validate_input(w: World) -> dict[str, Any]:
    return {"debtorId": gid("Debtor", await _bad_debtor(w))}


async def _debtor_update_input(w: World) -> dict[str, Any]:
    debtor = gid("Debtor", await _bad_debtor(w))
    return {"debtorId": debtor, "rawData": {"IBAN": "NL91ABNA0417164300"}}


LISTED_IBAN = "DE89370400440532013000"


async def _blacklist_remove_input(w: World) -> dict[str, Any]:
    added = await gql(
        w.client,
        "mutation($i: BlacklistAddInput!) { blacklistAdd(input: $i) { userErrors { code } } }",
        {"i": {"iban": LISTED_IBAN, "reason": "fraud"}},
        w.admin,
    )
    assert added["data"]["blacklistAdd"]["userErrors"] == []
    return {"iban": LISTED_IBAN}


async def voidable_attempt(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, clock: Any
) -> int:
    """A pending attempt not yet sent to the gateway: billing started, the submission job not
    run (the transaction is committed without queueing it), which is when a void is allowed."""
    upload_id = await billing_upload(client, admin_headers)
    async with db() as session:
        created = await billing_service.start_billing(session, clock, upload_id)
        await session.commit()
    first = min(created, key=lambda a: a.id)
    assert (first.status, first.mid_reference) == ("pending", None)
    return int(first.id)


async def _void_input(w: World) -> dict[str, Any]:
    return {
        "billingAttemptId": gid(
            "BillingAttempt", await voidable_attempt(w.client, w.admin, w.db, w.clock)
        )
    }


async def _retry_input(w: World) -> dict[str, Any]:
    """The attempt the sandbox declined with AM04 (insufficient funds): retryable."""
    upload_id = await billing_upload(w.client, w.admin)
    assert (await start(w.client, w.admin, upload_id))["data"]["billingStart"]["userErrors"] == []
    await w.drain()
    cid = (await debtors_of(w.client, w.admin, upload_id))["Cid"]["id"]
    (failed,) = await attempts(w.client, w.admin, debtor_id=cid)
    assert (failed["error_code"], failed["can_retry"]) == ("AM04", True)
    return {"billingAttemptId": gid("BillingAttempt", failed["id"])}


async def finished_delivery(w: World) -> str:
    """A delivery that succeeded, to a webhook A's creditor registered with its own token."""
    receiver = await Receiver().start()
    w.stack.push_async_callback(receiver.stop)
    token = await w.token("webhooks:read webhooks:write")
    hook = await w.client.post(
        "/v1/webhooks",
        json={"url": receiver.url, "events": ["receivable.created"]},
        headers=bearer(token),
    )
    assert hook.status_code == 201, hook.text
    created = await w.client.post(
        "/v1/receivables",
        json=receivable_payload(w.uid, force_proceed=True),
        headers=bearer(w.acme.api_key),
    )
    assert created.status_code == 201, created.text
    await w.drain()
    async with w.db() as session:
        delivery = (await session.scalars(select(WebhookDelivery))).one()
    assert delivery.status == "succeeded"
    return gid("WebhookDelivery", delivery.public_id)


async def _replay_input(w: World) -> dict[str, Any]:
    return {"id": await finished_delivery(w)}


async def platform_webhook(w: World) -> str:
    """A webhook of platform A; its public id."""
    hook = await w.client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["*"]},
        headers=bearer(w.acme.api_key),
    )
    assert hook.status_code == 201, hook.text
    return str(hook.json()["id"])


async def _webhook_input(w: World) -> dict[str, Any]:
    return {"id": gid("Webhook", await platform_webhook(w))}


@dataclass(frozen=True)
class Case:
    """One mutation: its input type, what its payload returns, and a valid input."""

    name: str
    input_type: str
    selection: str
    arrange: Callable[[World], Awaitable[dict[str, Any]]]
    allowed: str  # who may run it
    result: str  # the payload field set when it succeeded

    @property
    def document(self) -> str:
        return (
            f"mutation($i: {self.input_type}!) {{ {self.name}(input: $i) "
            f"{{ {self.selection} userErrors {{ field code }} }} }}"
        )


RECEIVABLE = "receivable { id status }"
CASES = {
    c.name: c
    for c in (
        Case("userSuspend", "UserIdInput", "user { status }", _suspend_input, "operator", "user"),
        Case(
            "userReinstate", "UserIdInput", "user { status }", _reinstate_input, "operator", "user"
        ),
        Case(
            "receivableUpdate", "ReceivableUpdateInput", RECEIVABLE, _update_input, "platform",
            "receivable",
        ),
        Case(
            "receivableCancel", "ReceivableCancelInput", RECEIVABLE, _cancel_input, "platform",
            "receivable",
        ),
        Case(
            "receivableContactAdd", "ReceivableContactAddInput", "contact { email }",
            _contact_input, "platform", "contact",
        ),
        Case(
            "receivableEvidenceSubmit", "ReceivableEvidenceSubmitInput", "evidence { id }",
            _evidence_input, "platform", "evidence",
        ),
        Case(
            "receivablePartialPaymentDecide", "ReceivablePartialPaymentInput", RECEIVABLE,
            _decision_input, "platform", "receivable",
        ),
        Case(
            "receivableStart", "ReceivableIdInput", RECEIVABLE, _start_input, "operator",
            "receivable",
        ),
        Case(
            "receivablePaymentRecord", "ReceivablePaymentRecordInput", RECEIVABLE,
            _payment_input, "operator", "receivable",
        ),
        Case(
            "receivablePayout", "ReceivableIdInput", RECEIVABLE, _payout_input, "operator",
            "receivable",
        ),
        Case(
            "receivableDisputeOpen", "ReceivableReasonInput", RECEIVABLE, _dispute_input,
            "operator", "receivable",
        ),
        Case(
            "receivableEvidenceRequest", "ReceivableReasonInput", RECEIVABLE,
            _evidence_request_input, "operator", "receivable",
        ),
        Case(
            "uploadValidate", "UploadValidateInput", "upload { id } total", _upload_validate_input,
            "operator", "upload",
        ),
        Case(
            "debtorValidate", "DebtorValidateInput", "debtor { id }", _debtor_validate_input,
            "operator", "debtor",
        ),
        Case(
            "debtorUpdate", "DebtorUpdateInput", "debtor { id validationStatus }",
            _debtor_update_input, "operator", "debtor",
        ),
        Case(
            "blacklistRemove", "BlacklistRemoveInput", "entry { iban }", _blacklist_remove_input,
            "operator", "entry",
        ),
        Case(
            "billingAttemptVoid", "BillingAttemptInput", "billingAttempt { status }",
            _void_input, "operator", "billingAttempt",
        ),
        Case(
            "billingAttemptRetry", "BillingAttemptInput", "billingAttempt { status }",
            _retry_input, "operator", "billingAttempt",
        ),
        Case(
            "webhookDelete", "WebhookIdInput", "deletedWebhookId", _webhook_input, "platform",
            "deletedWebhookId",
        ),
        Case(
            "webhookRotateSecret", "WebhookIdInput", "secret", _webhook_input, "platform",
            "secret",
        ),
        Case(
            "webhookDeliveryReplay", "WebhookDeliveryReplayInput", "delivery { id }",
            _replay_input, "creditor", "delivery",
        ),
    )
}  # fmt: skip


async def run(
    w: World, case: Case, value: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    return await gql(w.client, case.document, {"i": value}, headers)


def ok(body: dict[str, Any], case: Case) -> dict[str, Any]:
    """The payload of a mutation that succeeded."""
    assert "errors" not in body, body
    payload = body["data"][case.name]
    assert payload["userErrors"] == [], payload
    assert payload[case.result] is not None, payload
    return payload  # type: ignore[no-any-return]


async def assert_refused_writes_nothing(
    w: World,
    case: Case,
    value: dict[str, Any],
    refusal: Callable[[dict[str, Any]], None],
    headers: dict[str, str],
    *,
    then_allowed: dict[str, Any] | None = None,
) -> None:
    """Run the mutation as refused; nothing in the database changes. Then (with the valid
    input ``then_allowed``) run it as the allowed caller, which does change it: the probe
    could have seen a write."""
    before = await snapshot(w.db)
    refusal(await run(w, case, value, headers))
    after = await snapshot(w.db)
    assert changed_tables(before, after) == [], case.name
    if then_allowed is not None:
        ok(await run(w, case, then_allowed, await w.headers(case.allowed)), case)
        assert changed_tables(after, await snapshot(w.db)), f"{case.name} wrote nothing"


def user_errors(expected: list[dict[str, Any]], case: Case) -> Callable[[dict[str, Any]], None]:
    def check(body: dict[str, Any]) -> None:
        assert "errors" not in body, body
        payload = body["data"][case.name]
        assert payload["userErrors"] == expected, payload
        assert payload[case.result] in (None, []), payload

    return check


def top_level(code: str) -> Callable[[dict[str, Any]], None]:
    def check(body: dict[str, Any]) -> None:
        assert body["data"] is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], body

    return check


# --- Anonymous -------------------------------------------------------------------------------

ANONYMOUS = [
    "userSuspend",
    "userReinstate",
    "receivableUpdate",
    "receivableCancel",
    "receivableContactAdd",
    "receivableEvidenceSubmit",
    "receivablePartialPaymentDecide",
    "receivablePaymentRecord",
    "receivablePayout",
    "receivableDisputeOpen",
    "receivableEvidenceRequest",
    "uploadValidate",
    "debtorValidate",
    "debtorUpdate",
    "blacklistRemove",
    "billingAttemptVoid",
    "billingAttemptRetry",
    "webhookDeliveryReplay",
]


@pytest.mark.parametrize("name", ANONYMOUS)
async def test_anonymous_is_unauthenticated_and_writes_nothing(world: World, name: str) -> None:
    case = CASES[name]
    value = await case.arrange(world)
    await assert_refused_writes_nothing(
        world, case, value, top_level("UNAUTHENTICATED"), {}, then_allowed=value
    )


# --- Operator mutations: no other caller, however many scopes it holds --------------------

OPERATOR_MUTATIONS = [
    "userSuspend",
    "userReinstate",
    "receivablePaymentRecord",
    "receivablePayout",
    "receivableDisputeOpen",
    "receivableEvidenceRequest",
    "uploadValidate",
    "debtorUpdate",
    "blacklistRemove",
]


SEPA_IMPORT = """mutation($v: SepaPain002ImportInput!) { sepaPain002Import(input: $v) {
  settled approved declined userErrors { field code } } }"""


async def _import(w: World, report: bytes, headers: dict[str, str]) -> httpx.Response:
    operations = json.dumps({"query": SEPA_IMPORT, "variables": {"v": {"file": None}}})
    return await w.client.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.v.file"]})},
        files={"0": ("status.xml", report, "application/xml")},
        headers=headers,
    )


@pytest.mark.parametrize("who", ["platform", "creditor"])
async def test_sepa_pain002_import_is_operator_only(world: World, who: str) -> None:
    upload_id = await billing_upload(world.client, world.admin)
    exported = await gql(
        world.client,
        """mutation($v: SepaPain008ExportInput!) { sepaPain008Export(input: $v) {
        messageId userErrors { code } } }""",
        {"v": {"uploadId": gid("Upload", upload_id)}},
        world.admin,
    )
    message_id = exported["data"]["sepaPain008Export"]["messageId"]
    listed = await attempts(world.client, world.admin, upload_id=upload_id)
    report = pain002(message_id, [(a["transaction_id"], "ACSC", None) for a in listed])
    headers = await world.headers(who)
    before = await snapshot(world.db)
    refused = await _import(world, report, headers)
    assert refused.status_code == 200, refused.text
    assert refused.json()["data"]["sepaPain002Import"] == {
        "settled": 0,
        "approved": 0,
        "declined": 0,
        "userErrors": OPERATOR_ONLY,
    }
    assert changed_tables(before, await snapshot(world.db)) == []
    # Anonymous, a file upload to /graphql is refused before its body is read (server/limits).
    anonymous = await _import(world, report, {})
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert changed_tables(before, await snapshot(world.db)) == []
    # The same report, from the operator, settles every attempt: the refusals could have.
    settled = await _import(world, report, world.admin)
    assert settled.json()["data"]["sepaPain002Import"]["settled"] == len(listed) == 5


# --- Another tenant: not found, as if absent --------------------------------------------------

OTHER_TENANT = [
    "receivableUpdate",
    "receivableCancel",
    "receivableContactAdd",
    "receivableEvidenceSubmit",
    "receivablePartialPaymentDecide",
    "webhookDeliveryReplay",
]


# --- A creditor token without the write scope ------------------------------------------------

MISSING_SCOPE = [
    "receivableUpdate",
    "receivableCancel",
    "receivableContactAdd",
    "receivableEvidenceSubmit",
    "receivablePartialPaymentDecide",
    "webhookDeliveryReplay",
]


# Each caller that may not use a mutation, and the refusal it gets in the payload.
REFUSED_CALLERS = [
    *((name, who, OPERATOR_ONLY) for name in OPERATOR_MUTATIONS for who in ("platform", "user")),
    *((name, who, NOT_FOUND) for name in OTHER_TENANT for who in ("other_platform", "stranger")),
    *((name, "reader", INSUFFICIENT_SCOPE) for name in MISSING_SCOPE),
]


@pytest.mark.parametrize(
    ("name", "who", "refusal"),
    REFUSED_CALLERS,
    ids=[f"{name}-{who}" for name, who, _refusal in REFUSED_CALLERS],
)
async def test_a_caller_without_the_right_is_refused_and_writes_nothing(
    world: World, name: str, who: str, refusal: list[dict[str, Any]]
) -> None:
    """Operator mutations refuse any other caller however many scopes it holds; another
    tenant gets not_found, as if absent; a token without the write scope is refused before
    anything changes."""
    case = CASES[name]
    value = await case.arrange(world)
    if who == "user":
        # A creditor's token; for userReinstate another creditor's, with every scope: the
        # suspended creditor's own stopped working with the suspension (401, as test_reach pins).
        who = "stranger" if name == "userReinstate" else "creditor"
    await assert_refused_writes_nothing(
        world,
        case,
        value,
        user_errors(refusal, case),
        await world.headers(who),
        then_allowed=value,
    )


# --- Bad input ---------------------------------------------------------------------------------


def _with(**changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    return lambda _w, value: {**value, **changes}


def _receivable_state(**values: Any) -> Callable[[World, dict[str, Any]], Awaitable[None]]:
    async def put(w: World) -> None:
        await w.set_receivable(**values)

    return put


@dataclass(frozen=True)
class BadInput:
    """An input that is wrong, made from the valid one; and the refusal it gets."""

    id: str
    name: str
    spoil: Callable[[World, dict[str, Any]], dict[str, Any]]
    refusal: str | list[dict[str, Any]]  # a top-level code, or the userErrors
    before: Callable[[World], Awaitable[None]] | None = None  # e.g. put the row in a wrong state


UNKNOWN_RECEIVABLE = _with(id="rcv_doesnotexist")
USER_GID_AS_RECEIVABLE = lambda w, v: {**v, "id": gid("User", w.uid)}  # noqa: E731

BAD_INPUTS = [
    BadInput("unknown-id", "userSuspend", _with(id="usr_doesnotexist"), NOT_FOUND),
    BadInput("empty-id", "userSuspend", _with(id=""), NOT_FOUND),
    BadInput("receivable-id", "userSuspend", lambda w, v: {"id": w.rgid}, NOT_FOUND),
    BadInput("unknown-id", "userReinstate", _with(id="usr_doesnotexist"), NOT_FOUND),
    BadInput("malformed-gid", "userReinstate", _with(id="VXNlcjo="), NOT_FOUND),
    BadInput(
        "receivable-id", "userReinstate", lambda w, v: {"id": w.rgid}, NOT_FOUND
    ),
    BadInput("unknown-id", "receivableStart", UNKNOWN_RECEIVABLE, NOT_FOUND),
    BadInput("user-gid", "receivableStart", USER_GID_AS_RECEIVABLE, NOT_FOUND),
    BadInput(
        "already-started", "receivableStart", _with(), INVALID_TRANSITION,
        _receivable_state(status="in_process"),
    ),
    BadInput("unknown-id", "receivablePayout", UNKNOWN_RECEIVABLE, NOT_FOUND),
    BadInput(
        "not-fully-paid", "receivablePayout", _with(), INVALID_TRANSITION,
        _receivable_state(amount_recovered=Decimal("200.00"), awaiting_decision=True),
    ),
    BadInput("unknown-id", "receivableDisputeOpen", UNKNOWN_RECEIVABLE, NOT_FOUND),
    BadInput(
        "still-pending", "receivableDisputeOpen", _with(), INVALID_TRANSITION,
        _receivable_state(status="pending"),
    ),
    BadInput("unknown-id", "receivableEvidenceRequest", UNKNOWN_RECEIVABLE, NOT_FOUND),
    BadInput(
        "not-disputed", "receivableEvidenceRequest", _with(), INVALID_TRANSITION,
        _receivable_state(status="in_process"),
    ),
    BadInput(
        "zero-amount", "receivablePaymentRecord", _with(amount="0"),
        [{"field": "amount", "code": "out_of_range"}],
    ),
    BadInput("not-a-number", "receivablePaymentRecord", _with(amount="lots"), "BAD_USER_INPUT"),
    BadInput(
        "nothing-sent", "receivableEvidenceSubmit", lambda w, v: {"id": v["id"]},
        [{"field": "statement", "code": "required"}],
    ),
    BadInput(
        "blank-document-file", "receivableEvidenceSubmit",
        lambda w, v: {"id": v["id"], "documents": [{"file": ""}]},
        [{"field": "documents[0].file", "code": "required"}],
    ),
    BadInput(
        "document-without-file", "receivableEvidenceSubmit",
        lambda w, v: {"id": v["id"], "documents": [{"type": "delivery_note"}]},
        "BAD_USER_INPUT",
    ),
    BadInput("unknown-id", "receivableEvidenceSubmit", UNKNOWN_RECEIVABLE, NOT_FOUND),
    BadInput(
        "not-requested", "receivableEvidenceSubmit", _with(), INVALID_TRANSITION,
        _receivable_state(status="in_process"),
    ),
    BadInput(
        "unknown-action", "receivablePartialPaymentDecide", _with(action="GIVE_UP"),
        "BAD_USER_INPUT",
    ),
    BadInput(
        "rest-spelling-of-action", "receivablePartialPaymentDecide",
        _with(action="continue_recovery"), "BAD_USER_INPUT",
    ),
    BadInput("unknown-id", "receivablePartialPaymentDecide", UNKNOWN_RECEIVABLE, NOT_FOUND),
    BadInput(
        "no-decision-awaited", "receivablePartialPaymentDecide", _with(), INVALID_TRANSITION,
        _receivable_state(status="in_process", awaiting_decision=False),
    ),
    BadInput(
        "empty-iban", "blacklistRemove", _with(iban=""), [{"field": "iban", "code": "required"}]
    ),
    BadInput("malformed-iban", "blacklistRemove", _with(iban="DE00 1234"), NOT_FOUND),
    BadInput("unlisted-iban", "blacklistRemove", _with(iban="NL91ABNA0417164300"), NOT_FOUND),
    BadInput("unknown-id", "webhookDelete", _with(id="whk_doesnotexist"), NOT_FOUND),
    BadInput(
        "receivable-gid", "webhookDelete", lambda w, v: {"id": w.rgid}, NOT_FOUND
    ),
    BadInput("unknown-id", "webhookRotateSecret", _with(id="whk_doesnotexist"), NOT_FOUND),
    BadInput(
        "receivable-gid", "webhookRotateSecret", lambda w, v: {"id": w.rgid}, NOT_FOUND
    ),
    BadInput(
        "unknown-id", "webhookDeliveryReplay", _with(id=gid("WebhookDelivery", "whd_nope")),
        NOT_FOUND,
    ),
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[f"{b.name}-{b.id}" for b in BAD_INPUTS])
async def test_bad_input_is_refused_and_writes_nothing(world: World, bad: BadInput) -> None:
    case = CASES[bad.name]
    value = await case.arrange(world)
    spoilt = bad.spoil(world, value)
    if bad.before is not None:
        await bad.before(world)
    refusal = (
        top_level(bad.refusal) if isinstance(bad.refusal, str) else user_errors(bad.refusal, case)
    )
    # A wrong state is put right again before the allowed run; an input fault is not.
    await assert_refused_writes_nothing(
        world,
        case,
        spoilt,
        refusal,
        await world.headers(case.allowed),
        then_allowed=None if bad.before is not None else value,
    )


@pytest.mark.parametrize("name", ["webhookDelete", "webhookRotateSecret"])
async def test_a_deleted_webhook_is_not_found(world: World, name: str) -> None:
    case = CASES[name]
    value = await case.arrange(world)
    deleted = await run(world, CASES["webhookDelete"], value, bearer(world.acme.api_key))
    assert ok(deleted, CASES["webhookDelete"])["deletedWebhookId"]
    async with world.db() as session:
        secret = (await session.scalars(select(Webhook))).one().secret_encrypted
    await assert_refused_writes_nothing(
        world, case, value, user_errors(NOT_FOUND, case), bearer(world.acme.api_key)
    )
    async with world.db() as session:
        assert (await session.scalars(select(Webhook))).one().secret_encrypted == secret


# --- Allowed -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
async def test_the_allowed_caller_changes_it(world: World, name: str) -> None:
    case = CASES[name]
    value = await case.arrange(world)
    before = await snapshot(world.db)
    ok(await run(world, case, value, await world.headers(case.allowed)), case)
    assert changed_tables(before, await snapshot(world.db))


async def test_billing_attempt_void_cancels_a_pending_attempt(world: World) -> None:
    attempt_id = await voidable_attempt(world.client, world.admin, world.db, world.clock)
    case = CASES["billingAttemptVoid"]
    body = await gql(
        world.client,
        """mutation($i: BillingAttemptInput!) { billingAttemptVoid(input: $i) {
        billingAttempt { databaseId status isFinal isApproved canRetry processedAt }
        userErrors { field code } } }""",
        {"i": {"billingAttemptId": gid("BillingAttempt", attempt_id)}},
        world.admin,
    )
    payload = ok(body, case)
    assert payload["billingAttempt"] == {
        "databaseId": attempt_id,
        "status": "VOIDED",
        "isFinal": True,
        "isApproved": False,
        "canRetry": False,
        "processedAt": "2026-11-22T12:00:00+00:00",
    }
    async with world.db() as session:
        row = await session.get(BillingAttempt, attempt_id)
        assert row is not None
        debtor = await session.get(Debtor, row.debtor_id)
        others = (
            await session.scalars(select(BillingAttempt.status).where(BillingAttempt.id != row.id))
        ).all()
    assert (row.status, row.next_retry_at) == ("voided", None)
    # Its debtor's collection ends; the other attempts of the run are untouched.
    assert debtor is not None
    assert debtor.status == "failed"
    assert set(others) == {"pending"}
    # Voided once: a second void is a refusal that changes nothing.
    again = await gql(
        world.client, case.document, {"i": {"billingAttemptId": gid("BillingAttempt", attempt_id)}},
        world.admin,
    )  # fmt: skip
    assert again["data"]["billingAttemptVoid"]["userErrors"] == INVALID_TRANSITION


# --- An id of another type, read only after the caller's own refusal ---------------------------

WRONG_TYPE = [
    ("userSuspend", "UserIdInput", "user { id }"),
    ("receivableCancel", "ReceivableCancelInput", "receivable { id }"),
    ("webhookDelete", "WebhookIdInput", "deletedWebhookId"),
]


@pytest.mark.parametrize(("name", "input_type", "result"), WRONG_TYPE)
async def test_an_id_of_another_type_is_read_after_the_callers_refusal(
    world: World, name: str, input_type: str, result: str
) -> None:
    # The Relay id was read before the use case checked its caller: anonymous, or without the
    # scope, an id of another type answered a top-level NOT_FOUND instead of the refusal.
    document = (
        f"mutation($v: {input_type}!) {{ {name}(input: $v) {{ {result} "
        "userErrors { field code } } }"
    )
    variables: dict[str, Any] = {"v": {"id": gid("Debtor", 1)}}
    if name == "receivableCancel":
        variables["v"]["reason"] = "PAID_DIRECTLY"
    anonymous = await gql(world.client, document, variables)
    top_level("UNAUTHENTICATED")(anonymous)
    if name == "userSuspend":
        refused = await gql(world.client, document, variables, bearer(world.acme.api_key))
        expected = [{"field": None, "code": "unauthenticated"}]
        allowed_headers = world.admin
    else:
        reader = bearer(await world.token("users:read"))
        refused = await gql(world.client, document, variables, reader)
        expected = [{"field": None, "code": "insufficient_scope"}]
        allowed_headers = bearer(world.acme.api_key)
    assert refused["data"][name]["userErrors"] == expected, refused
    # Allowed, the id of another type names nothing of this one: the mutation's not_found.
    allowed = await gql(world.client, document, variables, allowed_headers)
    assert "errors" not in allowed, allowed
    assert allowed["data"][name]["userErrors"] == [{"field": None, "code": "not_found"}]
