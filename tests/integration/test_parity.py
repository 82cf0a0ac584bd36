"""Both faces proven equal: the same input through REST and through GraphQL, the same outcome.

Every operation both faces offer is a row of ``OPERATIONS``; ``CASES`` sends valid and bad inputs
(U+0000, wrong types, out of range, unknown ids, another tenant's ids, missing scope, anonymous)
through each face as the same principal and compares what comes back: the same data, or the same
kind of refusal with the same code and field. REST spells fields in snake_case
(``invoice.issue_date``), GraphQL in its input's camelCase (``invoice.issueDate``); the only
translation between the two is the tables at the top (``OUTCOME_OF_STATUS``,
``OUTCOME_OF_GRAPHQL_CODE``, ``KIND_OF_USER_ERROR_CODE``, ``REST_NAME_OF_ARGUMENT``,
``MUTATION_INPUT``).

Only the HTTP faces are driven: the arrangement goes through REST and the operator graph (one
helper in uploads_support sets figures no small file produces). Known disagreements are
``KNOWN``, marked ``xfail(strict=True)``: fixing one makes its case pass, which fails the run
until its entry goes.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.extraction.corpus import corpus, pdf_of
from tests.integration.cleavr_support import bearer, complete_user, create_user, creditor_token
from tests.integration.test_receivables import receivable_payload
from tests.integration.uploads_support import (
    csv_text,
    set_debtor_status,
    set_upload_counts,
    upload,
)

# --- The one translation table between the faces ------------------------------------------------

# REST status → the kind of outcome (both families).
OUTCOME_OF_STATUS = {
    200: "ok",
    201: "ok",
    202: "ok",
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "invalid",
}
# GraphQL ``extensions.code`` (top-level errors) → (kind, the REST ``error.code`` it stands for).
OUTCOME_OF_GRAPHQL_CODE = {
    "UNAUTHENTICATED": ("unauthenticated", "unauthenticated"),
    "NOT_FOUND": ("not_found", "not_found"),
    "FORBIDDEN": ("forbidden", "insufficient_scope"),
    "INVALID_TRANSITION": ("conflict", "invalid_transition"),
    "BAD_USER_INPUT": ("invalid", None),  # the code is that of extensions.errors[0]
}
# ``userErrors.code`` values that are not input errors → kind. Tether renders the
# ``unprocessable`` conflict (validating an upload still processing) as a 422, like bad input.
KIND_OF_USER_ERROR_CODE = {
    "unauthenticated": "unauthenticated",
    "not_found": "not_found",
    "insufficient_scope": "forbidden",
    "invalid_transition": "conflict",
    "unprocessable": "invalid",
    "platform_required": "conflict",
}
# Arguments the two faces name differently by contract (Relay's ``first``, the seed's ``limit``).
REST_NAME_OF_ARGUMENT = {"first": "limit"}
# A mutation's one argument: the paths under it are those of REST's body.
MUTATION_INPUT = "input"


@dataclass(frozen=True)
class Outcome:
    """What one face answered, in terms both faces share."""

    kind: str
    code: str | None = None  # Tether's /api/* errors carry none
    field: str | None = None  # REST spelling (snake_case)
    data: Any = None

    def matches(self, other: Outcome) -> bool:
        """Same kind, same data, same field; same code where both faces name one."""
        if (self.kind, self.field, self.data) != (other.kind, other.field, other.data):
            return False
        return self.code is None or other.code is None or self.code == other.code


def camel(path: str) -> str:
    """``invoice.issue_date`` → ``invoice.issueDate``: the GraphQL spelling of a REST field."""
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), path)


def gid(type_name: str, key: object) -> str:
    """A Relay global id."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def ungid(value: str) -> str:
    """The key inside a Relay global id."""
    return base64.b64decode(value).decode().split(":", 1)[1]


# --- The arranged world -------------------------------------------------------------------------


@dataclass
class World:
    """Objects and credentials one case acts on; ``other_*`` belong to another tenant."""

    headers: dict[str, dict[str, str]]
    user: str
    receivable: str
    other_user: str
    other_receivable: str
    upload: int
    debtor: int
    tag: str
    webhook: str = ""
    other_webhook: str = ""


async def _arrange(client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any, tag: str):
    acme = await make_platform(f"Acme {tag}", redirect=f"https://acme-{tag}.test/cb")
    other = await make_platform(f"Other {tag}", redirect=f"https://other-{tag}.test/cb")
    user = await create_user(client, acme.api_key, complete_user(f"ada-{tag}@danone.test"))
    other_user = await create_user(client, other.api_key, complete_user(f"bob-{tag}@danone.test"))

    async def receivable(key: str, uid: str) -> str:
        response = await client.post(
            "/v1/receivables", json=receivable_payload(uid), headers=bearer(key)
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    login = await client.post(
        "/api/login", json={"email": "admin@tether.test", "password": "password"}
    )
    assert login.status_code == 200, login.text
    operator = {"Authorization": f"Bearer {login.json()['token']}"}
    uploaded = await upload(client, operator, csv_text(3, bad_every=2))
    assert uploaded.status_code == 201, uploaded.text
    upload_id = uploaded.json()["data"]["id"]
    listed = await client.get(f"/api/admin/uploads/{upload_id}/debtors", headers=operator)
    me = await client.post(
        "/graphql",
        json={
            "query": "query($id: ID!) { node(id: $id) { ... on User { databaseId } } }",
            "variables": {"id": gid("User", user["id"])},
        },
        headers=operator,
    )
    numeric = me.json()["data"]["node"]["databaseId"]
    # A creditor token of the world's creditor holding one scope, none of the receivables' ones.
    few = await creditor_token(db, clock, acme.platform.id, numeric, "users:read")

    async def webhook(key: str) -> str:
        # Loopback is allowed in tests (ALLOW_PRIVATE_WEBHOOK_URLS); nothing listens on port 9.
        response = await client.post("/v1/webhooks", json=WEBHOOK_INPUT, headers=bearer(key))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    return World(
        headers={
            "platform": bearer(acme.api_key),
            "other": bearer(other.api_key),
            "operator": operator,
            "few_scopes": bearer(few),
            "anonymous": {},
        },
        user=user["id"],
        receivable=await receivable(acme.api_key, user["id"]),
        other_user=other_user["id"],
        other_receivable=await receivable(other.api_key, other_user["id"]),
        upload=upload_id,
        debtor=listed.json()["data"][-1]["id"],
        tag=tag,
        webhook=await webhook(acme.api_key),
        other_webhook=await webhook(other.api_key),
    )


# --- Canonical data, one projection per face ----------------------------------------------------

WEBHOOK_INPUT = {"url": "http://127.0.0.1:9/hook", "events": ["user.updated"]}


def _webhook(w: dict[str, Any]) -> dict[str, Any]:
    return {"url": w["url"], "events": w["events"], "description": w["description"]}


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def rest_receivable(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "status": r["status"],
        "amount": _dec(r["amount"]),
        "currency": r["currency"],
        "numbers": r["invoice"]["numbers"],
        "issue_date": r["invoice"]["issue_date"],
        "due_date": r["invoice"]["due_date"],
        "description": r["invoice"]["service_description"],
        "debtor": r["debtor"]["company_name"],
        "metadata": r["metadata"],
        "cancel_reason": (r.get("cancellation") or {}).get("reason"),
        "commission": {k: _dec(v) for k, v in r["commission"].items()},
        "indemnity": _dec(r["indemnity_due"]),
    }


RECEIVABLE = """id status amount currency invoiceNumbers issueDate dueDate serviceDescription
  debtorCompanyName metadata cancelReason commission { rate amount net } indemnityDue"""


def gql_receivable(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ungid(r["id"]),
        "status": r["status"].lower(),
        "amount": _dec(r["amount"]),
        "currency": r["currency"],
        "numbers": r["invoiceNumbers"],
        "issue_date": r["issueDate"],
        "due_date": r["dueDate"],
        "description": r["serviceDescription"],
        "debtor": r["debtorCompanyName"],
        "metadata": r["metadata"],
        "cancel_reason": _enum_value(r["cancelReason"]),
        "commission": {k: _dec(v) for k, v in r["commission"].items()},
        "indemnity": _dec(r["indemnityDue"]),
    }


def rest_user(u: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": u["id"],
        "email": u["email"],
        "status": u["status"],
        "capabilities": u["capabilities"],
    }


USER = "id email status capabilities { sendReceivables receivePayments }"


def gql_user(u: dict[str, Any]) -> dict[str, Any]:
    caps = u["capabilities"]
    return {
        "id": ungid(u["id"]),
        "email": u["email"],
        "status": u["status"],
        "capabilities": {
            "send_receivables": caps["sendReceivables"],
            "receive_payments": caps["receivePayments"],
        },
    }


UPLOAD_FIELDS = (
    "filename",
    "original_filename",
    "file_size",
    "mime_type",
    "status",
    "total_records",
    "processed_records",
    "failed_records",
    "success_rate",
    "debtors_count",
)
UPLOAD = "databaseId " + " ".join(camel(f) for f in UPLOAD_FIELDS)


def rest_upload(u: dict[str, Any]) -> dict[str, Any]:
    return {"id": u["id"], **{f: u[f] for f in UPLOAD_FIELDS}}


def _enum_value(value: Any) -> Any:
    """A GraphQL enum value in REST's spelling: ``COMPLETED`` → ``completed``."""
    return value.lower() if isinstance(value, str) else value


ENUM_FIELDS = {"status", "validation_status", "risk_class"}


def gql_upload(u: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": u["databaseId"],
        **{f: _enum_value(u[camel(f)]) if f in ENUM_FIELDS else u[camel(f)] for f in UPLOAD_FIELDS},
    }


DEBTOR_FIELDS = (
    "upload_id",
    "iban_masked",
    "first_name",
    "last_name",
    "email",
    "city",
    "country",
    "status",
    "validation_status",
    "validation_errors",
)
DEBTOR = "databaseId amount " + " ".join(camel(f) for f in DEBTOR_FIELDS)


def rest_debtor(d: dict[str, Any]) -> dict[str, Any]:
    return {"id": d["id"], "amount": _dec(d["amount"]), **{f: d[f] for f in DEBTOR_FIELDS}}


def gql_debtor(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": d["databaseId"],
        "amount": _dec(d["amount"]),
        **{f: _enum_value(d[camel(f)]) if f in ENUM_FIELDS else d[camel(f)] for f in DEBTOR_FIELDS},
    }


VOP_LOG_FIELDS = (
    "iban_masked",
    "iban_valid",
    "bank_identified",
    "bank_name",
    "bic",
    "country",
    "vop_score",
    "score_label",
    "result",
    "is_positive",
    "is_negative",
)
VOP_LOG = " ".join(camel(f) for f in VOP_LOG_FIELDS)


def rest_vop_log(v: dict[str, Any]) -> dict[str, Any]:
    return {f: v[f] for f in VOP_LOG_FIELDS}


def gql_vop_log(v: dict[str, Any]) -> dict[str, Any]:
    # GraphQL shows the enums' member names (VERIFIED, HIGH); REST the seed's values.
    enums = {"result", "score_label"}
    return {f: _enum_value(v[camel(f)]) if f in enums else v[camel(f)] for f in VOP_LOG_FIELDS}


STATS = ("total", "valid", "invalid", "pending", "blacklisted", "ready_for_sync")


def _camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {camel(k): _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


# --- Operations: what each face calls them, and how each face's answer reads ------------------

Rest = tuple[str, str, dict[str, Any]]  # method, url, httpx keyword arguments


@dataclass(frozen=True)
class Operation:
    """One operation both faces offer."""

    rest_route: tuple[str, str]
    graphql_field: str  # Query.x or Mutation.x
    rest_data: Callable[[Any], Any]
    gql_data: Callable[[Any], Any]
    document: str  # GraphQL; $v is the operation's variable(s)
    gql_path: tuple[str, ...]  # where the answer is in data
    payload: bool = False  # a mutation payload with userErrors
    mutates: bool = False  # each face acts on its own twin of the arranged world


def _mut(name: str, input_type: str, selection: str) -> str:
    return (
        f"mutation($v: {input_type}!) {{ {name}(input: $v) {{ {selection} "
        "userErrors { field code message } } }"
    )


def _root(field: str, selection: str) -> str:
    """A root field that takes the Relay id or the REST id: ``receivable(id:)``."""
    return f"query($id: ID!) {{ {field}(id: $id) {{ {selection} }} }}"


def _node(type_name: str, selection: str) -> str:
    return f"query($id: ID!) {{ node(id: $id) {{ ... on {type_name} {{ {selection} }} }} }}"


def _onboarding(u: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": u["status"],
        "kyb_status": u["kybStatus"],
        "stripe_account_status": u["stripeAccountStatus"],
        "requirements": u["requirements"]["currentlyDue"],
    }


def _rest_onboarding(u: dict[str, Any]) -> dict[str, Any]:
    return {k: u[k] for k in ("status", "kyb_status", "stripe_account_status", "requirements")}


def _rest_requirements(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("currently_due", "eventually_due", "past_due")}


def _gql_requirements(u: dict[str, Any]) -> dict[str, Any]:
    r = u["requirements"]
    return {
        "currently_due": r["currentlyDue"],
        "eventually_due": r["eventuallyDue"],
        "past_due": r["pastDue"],
    }


def _rest_stats(s: dict[str, Any]) -> dict[str, Any]:
    return {k: _dec(v) for k, v in s.items()}


def _gql_stats(s: dict[str, Any]) -> dict[str, Any]:
    return {re.sub(r"([A-Z])", r"_\1", k).lower(): _dec(v) for k, v in s.items()}


def _rest_rates(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(b["min_days"], b["max_days"], _dec(b["rate"])) for b in body["data"]]


def _gql_rates(bands: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(b["minDays"], b["maxDays"], _dec(b["rate"])) for b in bands]


def _rest_quote(q: dict[str, Any]) -> dict[str, Any]:
    return {k: _dec(q[k]) for k in ("rate", "commission", "net", "days_overdue")}


def _gql_quote(q: dict[str, Any]) -> dict[str, Any]:
    return {
        "rate": _dec(q["rate"]),
        "commission": _dec(q["commission"]),
        "net": _dec(q["net"]),
        "days_overdue": _dec(q["daysOverdue"]),
    }


def _rest_dashboard(body: dict[str, Any]) -> dict[str, Any]:
    d = body["data"]
    return {
        "uploads": d["uploads"],
        "debtors_total": d["debtors"]["total"],
        "by_status": d["debtors"]["by_status"],
        "by_country": d["debtors"]["by_country"],
        "latest_uploads": [rest_upload(u) for u in d["recent_activity"]["latest_uploads"]],
        "latest_debtors": [rest_debtor(x) for x in d["recent_activity"]["latest_debtors"]],
    }


def _gql_dashboard(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "uploads": d["uploads"],
        "debtors_total": d["debtors"]["total"],
        "by_status": d["debtors"]["byStatus"],
        "by_country": {c["country"]: c["count"] for c in d["debtors"]["byCountry"]},
        "latest_uploads": [gql_upload(u) for u in d["latestUploads"]],
        "latest_debtors": [gql_debtor(x) for x in d["latestDebtors"]],
    }


def _rest_upload_created(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["meta"]
    return {
        "upload": _without(rest_upload(body["data"]), "id", "filename"),
        "queued": meta["queued"],
        "created": meta.get("created", 0),
        "failed": meta.get("failed", 0),
        "unrecognized": meta["unrecognized_columns"],
    }


def _gql_upload_created(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "upload": _without(gql_upload(p["upload"]), "id", "filename"),
        "queued": p["queued"],
        "created": p["created"],
        "failed": p["failed"],
        "unrecognized": p["unrecognizedColumns"],
    }


def _without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The data but what differs between the twin worlds by construction (ids, emails)."""
    return {k: v for k, v in data.items() if k not in keys}


def _without_id(data: dict[str, Any]) -> dict[str, Any]:
    return _without(data, "id")


def _draft(data: dict[str, Any]) -> dict[str, Any]:
    # The twin worlds' creditor and the stored result's id differ by construction.
    metadata = _without(data.get("metadata") or {}, "extraction_id")
    return {**_without(data, "user_id"), "metadata": metadata}


def _rest_extraction(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "confidence": body["confidence"],
        "data": _draft(body["data"]),
        "missing_fields": body["missing_fields"],
        "warnings": body["warnings"],
    }


def _gql_extraction(p: dict[str, Any]) -> dict[str, Any]:
    result = p["extraction"]
    return {
        "confidence": result["confidence"],
        "data": _draft(result["data"]),
        "missing_fields": result["missingFields"],
        "warnings": result["warnings"],
    }


def _rest_attempt(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": a["status"],
        "attempt_number": a["attempt_number"],
        "amount": _dec(a["amount"]),
        "is_final": a["is_final"],
    }


def _gql_attempt(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": a["status"].lower(),
        "attempt_number": a["attemptNumber"],
        "amount": _dec(a["amount"]),
        "is_final": a["isFinal"],
    }


async def _exported_report(client: httpx.AsyncClient, w: World, db: Any) -> None:
    """Export the world's upload as pain.008 and keep a pain.002 approving all of it."""
    exported = await client.post(
        f"/api/admin/uploads/{w.upload}/sepa/pain008", headers=w.headers["operator"]
    )
    assert exported.status_code == 200, exported.text
    ids = re.findall(rb"<EndToEndId>([^<]+)</EndToEndId>", exported.content)
    msg_id = re.search(rb"<MsgId>([^<]+)</MsgId>", exported.content)
    assert msg_id is not None
    txs = b"".join(
        b"<TxInfAndSts><OrgnlEndToEndId>" + i + b"</OrgnlEndToEndId><TxSts>ACSC</TxSts>"
        b"</TxInfAndSts>"
        for i in ids
    )
    w.pain002 = (  # type: ignore[attr-defined]
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>'
        b"<GrpHdr><MsgId>R1</MsgId><CreDtTm>2026-11-23T09:00:00</CreDtTm></GrpHdr>"
        b"<OrgnlGrpInfAndSts><OrgnlMsgId>" + msg_id.group(1) + b"</OrgnlMsgId>"
        b"<OrgnlMsgNmId>pain.008.001.10</OrgnlMsgNmId></OrgnlGrpInfAndSts>"
        b"<OrgnlPmtInfAndSts>" + txs + b"</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>"
    )


def _pain002_case(who: str, expect: str, content: Callable[[World], bytes], **kw: Any) -> Case:
    return Case(
        "sepa.pain002",
        who,
        lambda w: (
            "FILE",
            "/api/admin/billing/pain002",
            {"form": {}, "file": ("status.xml", content(w), "application/xml")},
        ),
        lambda w: {},
        expect,
        **kw,
    )


INVOICE_PDF = pdf_of(next(spec for spec in corpus() if spec.name == "fr_two_column"))


OPERATIONS: dict[str, Operation] = {
    # --- /v1 webhooks
    "webhook.create": Operation(
        ("POST", "/v1/webhooks"),
        "Mutation.webhookCreate",
        lambda b: {**_webhook(b), "secret": b["secret"].startswith("whsec_")},
        lambda p: {**_webhook(p["webhook"]), "secret": p["secret"].startswith("whsec_")},
        _mut("webhookCreate", "WebhookCreateInput", "secret webhook { url events description }"),
        ("webhookCreate",),
        payload=True,
        mutates=True,
    ),
    "webhook.list": Operation(
        ("GET", "/v1/webhooks"),
        "Query.webhooks",
        lambda b: [_webhook(w) for w in b],
        lambda ws: [_webhook(w) for w in ws["nodes"]],
        "{ webhooks { nodes { url events description } } }",
        ("webhooks",),
    ),
    "webhook.delete": Operation(
        ("DELETE", "/v1/webhooks/{id}"),
        "Mutation.webhookDelete",
        lambda b: "deleted",
        lambda p: "deleted" if p["deletedWebhookId"] else None,
        _mut("webhookDelete", "WebhookIdInput", "deletedWebhookId"),
        ("webhookDelete",),
        payload=True,
        mutates=True,
    ),
    "webhook.rotate_secret": Operation(
        ("POST", "/v1/webhooks/{id}/rotate-secret"),
        "Mutation.webhookRotateSecret",
        lambda b: b["secret"].startswith("whsec_"),
        lambda p: p["secret"].startswith("whsec_"),
        _mut("webhookRotateSecret", "WebhookIdInput", "secret"),
        ("webhookRotateSecret",),
        payload=True,
        mutates=True,
    ),
    # --- /v1 receivables/ocr (a multipart file on both faces)
    "receivable.extract": Operation(
        ("POST", "/v1/receivables/ocr"),
        "Mutation.invoiceExtract",
        _rest_extraction,
        _gql_extraction,
        _mut(
            "invoiceExtract",
            "InvoiceExtractInput",
            "extraction { confidence data missingFields warnings { code message field } }",
        ),
        ("invoiceExtract",),
        payload=True,
        mutates=True,
    ),
    # --- /v1 users
    "user.create": Operation(
        ("POST", "/v1/users"),
        "Mutation.userCreate",
        lambda b: _without(rest_user(b), "id", "email"),
        lambda p: _without(gql_user(p["user"]), "id", "email"),
        _mut("userCreate", "UserCreateInput", f"user {{ {USER} }}"),
        ("userCreate",),
        payload=True,
        mutates=True,
    ),
    "user.get": Operation(
        ("GET", "/v1/users/{id}"),
        "Query.user",
        rest_user,
        gql_user,
        _root("user", USER),
        ("user",),
    ),
    "user.node": Operation(
        ("GET", "/v1/users/{id}"),
        "Query.node",
        rest_user,
        gql_user,
        _node("User", USER),
        ("node",),
    ),
    "user.onboarding_status": Operation(
        ("GET", "/v1/users/{id}/onboarding-status"),
        "Query.node",
        _rest_onboarding,
        _onboarding,
        _node("User", "status kybStatus stripeAccountStatus requirements { currentlyDue }"),
        ("node",),
    ),
    "user.requirements": Operation(
        ("GET", "/v1/users/{id}/requirements"),
        "Query.node",
        _rest_requirements,
        _gql_requirements,
        _node("User", "requirements { currentlyDue eventuallyDue pastDue }"),
        ("node",),
    ),
    # --- /v1 receivables
    "receivable.create": Operation(
        ("POST", "/v1/receivables"),
        "Mutation.receivableCreate",
        lambda b: _without_id(rest_receivable(b)),
        lambda p: _without_id(gql_receivable(p["receivable"])),
        _mut("receivableCreate", "ReceivableCreateInput", f"receivable {{ {RECEIVABLE} }}"),
        ("receivableCreate",),
        payload=True,
        mutates=True,
    ),
    "receivable.list": Operation(
        ("GET", "/v1/receivables"),
        "Query.receivables",
        lambda b: [rest_receivable(r) for r in b["data"]],
        lambda c: [gql_receivable(r) for r in c["nodes"]],
        "query($status: ReceivableStatus, $first: Int) { receivables(status: $status, "
        f"first: $first) {{ nodes {{ {RECEIVABLE} }} }} }}",
        ("receivables",),
    ),
    "receivable.get": Operation(
        ("GET", "/v1/receivables/{id}"),
        "Query.receivable",
        rest_receivable,
        gql_receivable,
        _root("receivable", RECEIVABLE),
        ("receivable",),
    ),
    "receivable.node": Operation(
        ("GET", "/v1/receivables/{id}"),
        "Query.node",
        rest_receivable,
        gql_receivable,
        _node("Receivable", RECEIVABLE),
        ("node",),
    ),
    "receivable.update": Operation(
        ("PATCH", "/v1/receivables/{id}"),
        "Mutation.receivableUpdate",
        lambda b: _without_id(rest_receivable(b)),
        lambda p: _without_id(gql_receivable(p["receivable"])),
        _mut("receivableUpdate", "ReceivableUpdateInput", f"receivable {{ {RECEIVABLE} }}"),
        ("receivableUpdate",),
        payload=True,
        mutates=True,
    ),
    "receivable.cancel": Operation(
        ("POST", "/v1/receivables/{id}/cancel"),
        "Mutation.receivableCancel",
        lambda b: _without_id(rest_receivable(b)),
        lambda p: _without_id(gql_receivable(p["receivable"])),
        _mut("receivableCancel", "ReceivableCancelInput", f"receivable {{ {RECEIVABLE} }}"),
        ("receivableCancel",),
        payload=True,
        mutates=True,
    ),
    "receivable.contact_add": Operation(
        ("POST", "/v1/receivables/{id}/contacts"),
        "Mutation.receivableContactAdd",
        lambda c: {k: c.get(k) for k in ("email", "first_name", "last_name", "phone", "level")},
        lambda p: {
            k: p["contact"][camel(k)]
            for k in ("email", "first_name", "last_name", "phone", "level")
        },
        _mut(
            "receivableContactAdd",
            "ReceivableContactAddInput",
            "contact { email firstName lastName phone level }",
        ),
        ("receivableContactAdd",),
        payload=True,
        mutates=True,
    ),
    "receivable.evidence": Operation(
        ("POST", "/v1/receivables/{id}/evidence"),
        "Mutation.receivableEvidenceSubmit",
        lambda b: {"statement": b["statement"], "status": b["status"]},
        lambda p: {
            "statement": p["evidence"]["statement"],
            "status": p["receivable"]["status"].lower(),
        },
        _mut(
            "receivableEvidenceSubmit",
            "ReceivableEvidenceSubmitInput",
            "evidence { statement } receivable { status }",
        ),
        ("receivableEvidenceSubmit",),
        payload=True,
        mutates=True,
    ),
    "receivable.partial_payment": Operation(
        ("POST", "/v1/receivables/{id}/partial-payment"),
        "Mutation.receivablePartialPaymentDecide",
        lambda b: _without_id(rest_receivable(b)),
        lambda p: _without_id(gql_receivable(p["receivable"])),
        _mut(
            "receivablePartialPaymentDecide",
            "ReceivablePartialPaymentInput",
            f"receivable {{ {RECEIVABLE} }}",
        ),
        ("receivablePartialPaymentDecide",),
        payload=True,
        mutates=True,
    ),
    # --- /v1 reports and commission
    "reports.stats": Operation(
        ("GET", "/v1/reports/stats"),
        "Query.recoveryStats",
        _rest_stats,
        _gql_stats,
        "query($period: StatsPeriod!, $currency: String) { recoveryStats(period: $period, "
        "currency: $currency) { totalSent "
        "totalRecovered totalAmountSent totalAmountRecovered avgDaysToRecovery "
        "withPhoneSuccessRate withoutPhoneSuccessRate } }",
        ("recoveryStats",),
    ),
    "commission.rates": Operation(
        ("GET", "/v1/commission/rates"),
        "Query.commissionRates",
        _rest_rates,
        _gql_rates,
        "{ commissionRates { minDays maxDays rate } }",
        ("commissionRates",),
    ),
    "commission.calculate": Operation(
        ("POST", "/v1/commission/calculate"),
        "Query.commissionQuote",
        _rest_quote,
        _gql_quote,
        "query($amount: Decimal!, $dueDate: Date!) { commissionQuote(amount: $amount, "
        "dueDate: $dueDate) { rate commission net daysOverdue } }",
        ("commissionQuote",),
    ),
    # --- /api auth
    "auth.login": Operation(
        ("POST", "/api/login"),
        "Mutation.login",
        lambda b: {"email": b["user"]["email"], "token": bool(b["token"])},
        lambda p: {"email": p["user"]["email"], "token": bool(p["token"])},
        _mut("login", "LoginInput", "token user { email }"),
        ("login",),
        payload=True,
    ),
    "auth.logout": Operation(
        ("POST", "/api/logout"),
        "Mutation.logout",
        lambda b: True,
        lambda p: p["ok"],
        "mutation { logout { ok userErrors { field code message } } }",
        ("logout",),
        payload=True,
        mutates=True,
    ),
    "auth.me": Operation(
        ("GET", "/api/user"),
        "Query.me",
        lambda b: {"email": b["email"], "name": b["name"]},
        lambda u: {"email": u["email"], "name": u["name"]},
        "{ me { email name } }",
        ("me",),
    ),
    # --- /api uploads
    "upload.list": Operation(
        ("GET", "/api/admin/uploads"),
        "Query.uploads",
        lambda b: [rest_upload(u) for u in b["data"]],
        lambda c: [gql_upload(u) for u in c["nodes"]],
        f"query($status: UploadStatus) {{ uploads(status: $status) {{ nodes {{ {UPLOAD} }} }} }}",
        ("uploads",),
    ),
    "upload.create": Operation(
        ("POST", "/api/admin/uploads"),
        "Mutation.uploadCreate",
        _rest_upload_created,
        _gql_upload_created,
        _mut(
            "uploadCreate",
            "UploadCreateInput",
            f"upload {{ {UPLOAD} }} queued created failed unrecognizedColumns",
        ),
        ("uploadCreate",),
        payload=True,
        mutates=True,
    ),
    "upload.get": Operation(
        ("GET", "/api/admin/uploads/{id}"),
        "Query.upload",
        lambda b: rest_upload(b["data"]),
        gql_upload,
        _root("upload", UPLOAD),
        ("upload",),
    ),
    "upload.node": Operation(
        ("GET", "/api/admin/uploads/{id}"),
        "Query.node",
        lambda b: rest_upload(b["data"]),
        gql_upload,
        _node("Upload", UPLOAD),
        ("node",),
    ),
    "upload.status": Operation(
        ("GET", "/api/admin/uploads/{id}/status"),
        "Query.node",
        lambda b: {k: b["data"][k] for k in ("status", "progress", "is_complete")},
        lambda u: {
            "status": _enum_value(u["status"]),
            "progress": u["progress"],
            "is_complete": u["isComplete"],
        },
        _node("Upload", "status progress isComplete"),
        ("node",),
    ),
    "upload.debtors": Operation(
        ("GET", "/api/admin/uploads/{id}/debtors"),
        "Query.node",
        lambda b: [
            rest_debtor({**d, "email": None, "city": None, "country": None, "status": None})
            for d in b["data"]
        ],
        lambda u: [
            gql_debtor({**d, "email": None, "city": None, "country": None, "status": None})
            for d in u["debtors"]["nodes"]
        ],
        "query($id: ID!, $validationStatus: ValidationStatus) { node(id: $id) { ... on Upload { "
        f"debtors(validationStatus: $validationStatus) {{ nodes {{ {DEBTOR} }} }} }} }} }}",
        ("node",),
    ),
    "upload.validate": Operation(
        ("POST", "/api/admin/uploads/{id}/validate"),
        "Mutation.uploadValidate",
        lambda b: b["data"],
        lambda p: {k: p[k] for k in ("total", "valid", "invalid")},
        _mut("uploadValidate", "UploadValidateInput", "total valid invalid"),
        ("uploadValidate",),
        payload=True,
        mutates=True,
    ),
    "upload.validation_stats": Operation(
        ("GET", "/api/admin/uploads/{id}/validation-stats"),
        "Query.node",
        lambda b: b["data"],
        lambda u: {k: u["validationStats"][camel(k)] for k in STATS},
        _node("Upload", "validationStats { " + " ".join(camel(k) for k in STATS) + " }"),
        ("node",),
    ),
    "dashboard": Operation(
        ("GET", "/api/admin/dashboard"),
        "Query.dashboard",
        _rest_dashboard,
        _gql_dashboard,
        "{ dashboard { uploads { total pending processing completed failed } debtors { total "
        "byStatus { pending processing recovered failed } byCountry { country count } } "
        f"latestUploads {{ {UPLOAD} }} latestDebtors {{ {DEBTOR} }} }} }}",
        ("dashboard",),
    ),
    # --- /api debtors
    "debtor.list": Operation(
        ("GET", "/api/admin/debtors"),
        "Query.debtors",
        lambda b: [rest_debtor(d) for d in b["data"]],
        lambda c: [gql_debtor(d) for d in c["nodes"]],
        "query($status: DebtorStatus, $uploadId: ID, $country: String) { debtors(status: $status, "
        f"uploadId: $uploadId, country: $country) {{ nodes {{ {DEBTOR} }} }} }}",
        ("debtors",),
    ),
    "debtor.get": Operation(
        ("GET", "/api/admin/debtors/{id}"),
        "Query.debtor",
        lambda b: rest_debtor(b["data"]),
        gql_debtor,
        _root("debtor", DEBTOR),
        ("debtor",),
    ),
    "debtor.node": Operation(
        ("GET", "/api/admin/debtors/{id}"),
        "Query.node",
        lambda b: rest_debtor(b["data"]),
        gql_debtor,
        _node("Debtor", DEBTOR),
        ("node",),
    ),
    "debtor.update": Operation(
        ("PUT", "/api/admin/debtors/{id}"),
        "Mutation.debtorUpdate",
        lambda b: _without_id({**rest_debtor(b["data"]), "upload_id": None}),
        lambda p: _without_id({**gql_debtor(p["debtor"]), "upload_id": None}),
        _mut("debtorUpdate", "DebtorUpdateInput", f"debtor {{ {DEBTOR} }}"),
        ("debtorUpdate",),
        payload=True,
        mutates=True,
    ),
    "debtor.validate": Operation(
        ("POST", "/api/admin/debtors/{id}/validate"),
        "Mutation.debtorValidate",
        lambda b: {k: b["data"][k] for k in ("validation_status", "validation_errors")},
        lambda p: {
            "validation_status": _enum_value(p["debtor"]["validationStatus"]),
            "validation_errors": p["debtor"]["validationErrors"],
        },
        _mut(
            "debtorValidate", "DebtorValidateInput", "debtor { validationStatus validationErrors }"
        ),
        ("debtorValidate",),
        payload=True,
        mutates=True,
    ),
    # --- /api billing and SEPA files
    "billing.list": Operation(
        ("GET", "/api/admin/billing-attempts"),
        "Query.billingAttempts",
        lambda b: [_rest_attempt(a) for a in b["data"]],
        lambda c: [_gql_attempt(a) for a in c["nodes"]],
        "query($status: BillingStatus, $uploadId: ID, $debtorId: ID) { billingAttempts("
        "status: $status, uploadId: $uploadId, debtorId: $debtorId) { nodes { status "
        "attemptNumber amount isFinal } } }",
        ("billingAttempts",),
    ),
    "sepa.pain008": Operation(
        ("POST", "/api/admin/uploads/{id}/sepa/pain008"),
        "Mutation.sepaPain008Export",
        lambda xml: {"transactions": xml.count(b"<DrctDbtTxInf>")},
        lambda p: {"transactions": p["transactions"]},
        _mut("sepaPain008Export", "SepaPain008ExportInput", "transactions"),
        ("sepaPain008Export",),
        payload=True,
        mutates=True,
    ),
    "sepa.pain002": Operation(
        ("POST", "/api/admin/billing/pain002"),
        "Mutation.sepaPain002Import",
        lambda b: {k: b["data"][k] for k in ("settled", "approved", "declined", "pending")},
        lambda p: {k: p[k] for k in ("settled", "approved", "declined", "pending")},
        _mut("sepaPain002Import", "SepaPain002ImportInput", "settled approved declined pending"),
        ("sepaPain002Import",),
        payload=True,
        mutates=True,
    ),
    # --- /api VOP logs
    "vop_log.list": Operation(
        ("GET", "/api/admin/vop-logs"),
        "Query.vopLogs",
        lambda b: [rest_vop_log(v) for v in b["data"]],
        lambda c: [gql_vop_log(v) for v in c["nodes"]],
        "query($result: VopResult, $uploadId: ID, $debtorId: ID) { vopLogs(result: $result, "
        f"uploadId: $uploadId, debtorId: $debtorId) {{ nodes {{ {VOP_LOG} }} }} }}",
        ("vopLogs",),
    ),
}

# REST routes with no GraphQL counterpart, and why.
REST_ONLY = {
    ("GET", "/openapi.json"): "the REST contract's own document",
    ("GET", "/docs"): "the REST contract's reference page",
    ("GET", "/docs/docs.js"): "the REST contract's reference page",
    ("GET", "/onboarding/{token}"): "a hosted HTML page for a person, not an API operation",
    ("POST", "/onboarding/{token}"): "a hosted HTML form for a person, not an API operation",
    ("GET", "/oauth/authorize"): "OAuth 2 is a REST protocol by definition",
    ("GET", "/oauth/consent"): "OAuth 2 is a REST protocol by definition",
    ("POST", "/oauth/consent"): "OAuth 2 is a REST protocol by definition",
    ("POST", "/oauth/token"): "OAuth 2 is a REST protocol by definition",
    ("POST", "/oauth/revoke"): "OAuth 2 is a REST protocol by definition",
    ("POST", "/api/billing/callback"): "a gateway's signed server-to-server callback, no caller",
}
# GraphQL root fields with no REST counterpart, and why.
GRAPHQL_ONLY = {
    "Query.nodes": "Relay's batch form of node(id)",
    "Query.blacklistedIbans": "the blacklist is managed from the operator graph only",
    "Mutation.blacklistAdd": "the blacklist is managed from the operator graph only",
    "Mutation.blacklistRemove": "the blacklist is managed from the operator graph only",
    "Mutation.platformDisconnect": "the seed has no path to disconnect a platform (PRODUCT.md §1 "
    "asks for it): the graph is its face",
    "Mutation.userSuspend": "operator actions on creditors exist only in the operator graph",
    "Mutation.userReinstate": "operator actions on creditors exist only in the operator graph",
    "Mutation.receivableStart": "operator recovery actions exist only in the operator graph",
    "Mutation.receivablePaymentRecord": "operator recovery actions exist only in the graph",
    "Mutation.receivablePayout": "operator recovery actions exist only in the operator graph",
    "Mutation.receivableDisputeOpen": "operator recovery actions exist only in the graph",
    "Mutation.receivableEvidenceRequest": "operator recovery actions exist only in the graph",
    "Mutation.billingStart": "operator billing actions exist only in the operator graph",
    "Mutation.billingAttemptVoid": "operator billing actions exist only in the operator graph",
    "Mutation.billingAttemptRetry": "operator billing actions exist only in the operator graph",
    "Mutation.webhookDeliveryReplay": "the seed has no replay route; deliveries are graph nodes",
    # Live updates: REST has webhooks instead (PRODUCT.md §5).
    "Subscription.events": "live events are a WebSocket subscription; REST has webhooks",
    "Subscription.receivableStatusChanged": "live updates are GraphQL subscriptions only",
    "Subscription.userUpdated": "live updates are GraphQL subscriptions only",
    "Subscription.uploadProgress": "live updates are GraphQL subscriptions only",
    "Subscription.debtorStatusChanged": "live updates are GraphQL subscriptions only",
    "Subscription.dashboardUpdated": "live updates are GraphQL subscriptions only",
    "Subscription.billingAttemptUpdated": "live updates are GraphQL subscriptions only",
}


# --- Cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One input, as each face spells it, sent as one principal."""

    op: str
    who: str
    rest: Callable[[World], Rest]
    gql: Callable[[World], dict[str, Any]]  # the GraphQL variables
    expect: str  # the kind both faces must answer
    prepare: Callable[[httpx.AsyncClient, World, Any], Awaitable[None]] | None = None


NUL = "Consulting\x00, September"
GQL_INVOICE = {
    "numbers": ["INV-2026-001"],
    "issueDate": "2026-09-01",
    "dueDate": "2026-10-01",
    "serviceDescription": "Consulting, September",
    "amount": "1200.0",
    "amountBeforeTax": "1000.0",
    "taxAmount": "200.0",
}


def _gql_receivable_input(uid: str, **invoice: Any) -> dict[str, Any]:
    rest = receivable_payload(uid)
    return {
        "userId": uid,
        "invoice": {**GQL_INVOICE, "numbers": ["INV-2026-NEW"], **invoice},
        "debtor": _camel_keys(rest["debtor"]),
        "metadata": rest["metadata"],
    }


def _rest_receivable_input(uid: str, **invoice: Any) -> dict[str, Any]:
    payload = receivable_payload(uid)
    payload["invoice"] = {**payload["invoice"], "numbers": ["INV-2026-NEW"], **invoice}
    return payload


def _json_money(value: Any) -> Any:
    """A GraphQL Decimal's text as the JSON number REST takes (the seed types amounts number);
    any other value as it is."""
    if isinstance(value, str) and re.fullmatch(r"-?\d+(?:\.\d+)?", value):
        return float(value)
    return value


def create_receivable(who: str, expect: str, **invoice: Any) -> Case:
    rest_invoice = {
        re.sub(r"([A-Z])", r"_\1", k).lower(): _json_money(v) for k, v in invoice.items()
    }
    return Case(
        "receivable.create",
        who,
        lambda w: (
            "POST",
            "/v1/receivables",
            {"json": _rest_receivable_input(w.user, **rest_invoice)},
        ),
        lambda w: {"v": _gql_receivable_input(w.user, **invoice)},
        expect,
    )


def _on(
    op: str,
    who: str,
    expect: str,
    target: str,
    prepare: Callable[[httpx.AsyncClient, World, Any], Awaitable[None]] | None = None,
    *,
    rest_id: bool = False,
) -> Case:
    """A case on one object: ``target`` names the World attribute whose id goes in the path.

    GraphQL names it by its Relay id, or by the REST id when ``rest_id`` (root fields take both).
    """
    operation = OPERATIONS[op]
    method, route = operation.rest_route
    type_name = {"receivable": "Receivable", "user": "User", "upload": "Upload", "debtor": "Debtor"}

    def rest(w: World) -> Rest:
        return method, route.replace("{id}", str(getattr(w, target))), {}

    def gql(w: World) -> dict[str, Any]:
        if rest_id:
            return {"id": str(getattr(w, target))}
        return {"id": gid(type_name[target.removeprefix("other_")], getattr(w, target))}

    return Case(op, who, rest, gql, expect, prepare)


def _mutation_on(
    op: str,
    who: str,
    expect: str,
    target: str,
    rest_body: dict[str, Any] | None,
    gql_input: Callable[[str], dict[str, Any]],
    *,
    relay: str | None = None,
    verb: str = "json",
    prepare: Callable[[httpx.AsyncClient, World, Any], Awaitable[None]] | None = None,
) -> Case:
    """A mutation on one object; GraphQL names it by the Relay id when ``relay`` is the type."""
    method, route = OPERATIONS[op].rest_route

    def rest(w: World) -> Rest:
        kwargs = {} if rest_body is None else {verb: rest_body}
        return method, route.replace("{id}", str(getattr(w, target))), kwargs

    def gql(w: World) -> dict[str, Any]:
        key = getattr(w, target)
        return {"v": gql_input(gid(relay, key) if relay else str(key))}

    return Case(op, who, rest, gql, expect, prepare)


def _query(op: str, who: str, expect: str, rest_url: str, gql_vars: dict[str, Any]) -> Case:
    method = OPERATIONS[op].rest_route[0]
    return Case(op, who, lambda w: (method, rest_url, {}), lambda w: gql_vars, expect)


async def _operator_steps(client: httpx.AsyncClient, w: World, steps: list[str]) -> None:
    """Move the world's receivable along with the operator graph's own mutations."""
    for step in steps:
        name, _, extra = step.partition(" ")
        input_type = {
            "receivableStart": "ReceivableIdInput",
            "receivableDisputeOpen": "ReceivableReasonInput",
            "receivableEvidenceRequest": "ReceivableReasonInput",
            "receivablePaymentRecord": "ReceivablePaymentRecordInput",
        }[name]
        variables: dict[str, Any] = {"id": w.receivable}
        if extra:
            variables["amount"] = extra
        response = await client.post(
            "/graphql",
            json={
                "query": _mut(name, input_type, "receivable { status }"),
                "variables": {"v": variables},
            },
            headers=w.headers["operator"],
        )
        payload = response.json()["data"][name]
        assert not payload["userErrors"], payload


async def _evidence_requested(client: httpx.AsyncClient, w: World, db: Any) -> None:
    steps = ["receivableStart", "receivableDisputeOpen", "receivableEvidenceRequest"]
    await _operator_steps(client, w, steps)


async def _partly_paid(client: httpx.AsyncClient, w: World, db: Any) -> None:
    await _operator_steps(client, w, ["receivableStart", "receivablePaymentRecord 200.00"])


async def _debtor_in_collection(client: httpx.AsyncClient, w: World, db: Any) -> None:
    await set_debtor_status(db, w.debtor, "processing")


async def _huge_upload(client: httpx.AsyncClient, w: World, db: Any) -> None:
    await set_upload_counts(db, w.upload, total=20_000, processed=203)


# The disagreements found, by case: the follow-up list. A fixed one XPASSes and fails the run.
KNOWN: dict[str, str] = {}


def row(case: Case, label: str) -> Any:
    """A parametrised case, marked xfail(strict) when it is a known disagreement."""
    if label in KNOWN:
        mark = pytest.mark.xfail(strict=True, reason=KNOWN[label])
        return pytest.param(case, id=label, marks=mark)
    return pytest.param(case, id=label)


def user_input(w: World, **changes: Any) -> dict[str, Any]:
    return {**complete_user(f"new-{w.tag}@danone.test"), **changes}


def _webhook_case(who: str, expect: str, label: str, **body: Any) -> Any:
    payload = {**WEBHOOK_INPUT, **body}
    return row(
        Case(
            "webhook.create",
            who,
            lambda w: ("POST", "/v1/webhooks", {"json": payload}),
            lambda w: {"v": payload},
            expect,
        ),
        label,
    )


def _webhook_on(op: str, who: str, expect: str, target: str, label: str) -> Any:
    return row(
        _mutation_on(op, who, expect, target, None, lambda i: {"id": i}, relay="Webhook"), label
    )


CASES = [
    # webhooks
    _webhook_case("platform", "ok", "webhook.create-valid"),
    _webhook_case("platform", "ok", "webhook.create-described", description="CRM sync"),
    _webhook_case("platform", "invalid", "webhook.create-bad-url", url="ftp://x.test/"),
    _webhook_case("platform", "invalid", "webhook.create-bad-event", events=["nope"]),
    _webhook_case("platform", "invalid", "webhook.create-no-events", events=[]),
    _webhook_case("few_scopes", "forbidden", "webhook.create-missing-scope"),
    _webhook_case("anonymous", "unauthenticated", "webhook.create-anonymous"),
    _webhook_case("operator", "conflict", "webhook.create-operator"),
    row(_query("webhook.list", "platform", "ok", "/v1/webhooks", {}), "webhook.list-platform"),
    row(_query("webhook.list", "other", "ok", "/v1/webhooks", {}), "webhook.list-other"),
    row(
        _query("webhook.list", "few_scopes", "forbidden", "/v1/webhooks", {}),
        "webhook.list-missing-scope",
    ),
    row(
        _query("webhook.list", "anonymous", "unauthenticated", "/v1/webhooks", {}),
        "webhook.list-anonymous",
    ),
    _webhook_on("webhook.delete", "platform", "ok", "webhook", "webhook.delete-valid"),
    _webhook_on("webhook.delete", "platform", "not_found", "other_webhook", "webhook.delete-other"),
    _webhook_on("webhook.delete", "few_scopes", "forbidden", "webhook", "webhook.delete-scope"),
    _webhook_on(
        "webhook.delete", "anonymous", "unauthenticated", "webhook", "webhook.delete-anonymous"
    ),
    _webhook_on("webhook.rotate_secret", "platform", "ok", "webhook", "webhook.rotate-valid"),
    _webhook_on(
        "webhook.rotate_secret", "other", "not_found", "webhook", "webhook.rotate-other-tenant"
    ),
    _webhook_on(
        "webhook.rotate_secret", "few_scopes", "forbidden", "webhook", "webhook.rotate-scope"
    ),
    _webhook_on(
        "webhook.rotate_secret",
        "anonymous",
        "unauthenticated",
        "webhook",
        "webhook.rotate-anonymous",
    ),
    # users
    row(
        Case(
            "user.create",
            "platform",
            lambda w: ("POST", "/v1/users", {"json": user_input(w)}),
            lambda w: {"v": _camel_keys(user_input(w))},
            "ok",
        ),
        "user.create-valid",
    ),
    row(
        Case(
            "user.create",
            "platform",
            lambda w: ("POST", "/v1/users", {"json": user_input(w, email="a\x00@b.test")}),
            lambda w: {"v": {**_camel_keys(user_input(w)), "email": "a\x00@b.test"}},
            "invalid",
        ),
        "user.create-nul",
    ),
    row(
        Case(
            "user.create",
            "platform",
            lambda w: ("POST", "/v1/users", {"json": user_input(w, email="not-an-email")}),
            lambda w: {"v": {**_camel_keys(user_input(w)), "email": "not-an-email"}},
            "invalid",
        ),
        "user.create-bad-email",
    ),
    row(
        Case(
            "user.create",
            "platform",
            lambda w: ("POST", "/v1/users", {"json": user_input(w, email=5)}),
            lambda w: {"v": {**_camel_keys(user_input(w)), "email": 5}},
            "invalid",
        ),
        "user.create-wrong-type",
    ),
    row(
        Case(
            "user.create",
            "few_scopes",
            lambda w: ("POST", "/v1/users", {"json": user_input(w)}),
            lambda w: {"v": _camel_keys(user_input(w))},
            "forbidden",
        ),
        "user.create-missing-scope",
    ),
    row(
        Case(
            "user.create",
            "anonymous",
            lambda w: ("POST", "/v1/users", {"json": user_input(w)}),
            lambda w: {"v": _camel_keys(user_input(w))},
            "unauthenticated",
        ),
        "user.create-anonymous",
    ),
    row(_on("user.get", "platform", "ok", "user"), "user.get-valid"),
    row(_on("user.get", "platform", "not_found", "other_user"), "user.get-other-tenant"),
    row(_on("user.get", "anonymous", "unauthenticated", "user"), "user.get-anonymous"),
    row(_on("user.get", "platform", "ok", "user", rest_id=True), "user.get-rest-id"),
    row(_on("user.node", "platform", "ok", "user"), "user.node-valid"),
    row(_on("user.node", "anonymous", "unauthenticated", "user"), "user.node-anonymous"),
    row(_on("user.onboarding_status", "platform", "ok", "user"), "user.onboarding-valid"),
    row(_on("user.onboarding_status", "other", "not_found", "user"), "user.onboarding-other"),
    row(_on("user.requirements", "platform", "ok", "user"), "user.requirements-valid"),
    row(_on("user.requirements", "other", "not_found", "user"), "user.requirements-other"),
    # receivables
    row(create_receivable("platform", "ok"), "receivable.create-valid"),
    row(
        create_receivable("platform", "invalid", serviceDescription=NUL),
        "receivable.create-nul",
    ),
    row(create_receivable("platform", "invalid", amount="-5"), "receivable.create-out-of-range"),
    row(create_receivable("platform", "invalid", amount="abc"), "receivable.create-wrong-type"),
    row(
        create_receivable("platform", "invalid", issueDate="2026-13-45"),
        "receivable.create-bad-date",
    ),
    row(create_receivable("few_scopes", "forbidden"), "receivable.create-missing-scope"),
    row(create_receivable("anonymous", "unauthenticated"), "receivable.create-anonymous"),
    row(
        Case(
            "receivable.create",
            "other",
            lambda w: ("POST", "/v1/receivables", {"json": _rest_receivable_input(w.user)}),
            lambda w: {"v": _gql_receivable_input(w.user)},
            "invalid",
        ),
        "receivable.create-other-tenant-user",
    ),
    row(_query("receivable.list", "platform", "ok", "/v1/receivables", {}), "receivable.list"),
    row(
        _query(
            "receivable.list",
            "platform",
            "ok",
            "/v1/receivables?status=cancelled",
            {"status": "CANCELLED"},
        ),
        "receivable.list-status",
    ),
    row(
        _query(
            "receivable.list",
            "platform",
            "invalid",
            "/v1/receivables?status=bogus",
            {"status": "BOGUS"},
        ),
        "receivable.list-bad-status",
    ),
    row(
        _query("receivable.list", "platform", "invalid", "/v1/receivables?limit=0", {"first": 0}),
        "receivable.list-out-of-range",
    ),
    row(
        _query("receivable.list", "few_scopes", "forbidden", "/v1/receivables", {}),
        "receivable.list-missing-scope",
    ),
    row(
        _query("receivable.list", "anonymous", "unauthenticated", "/v1/receivables", {}),
        "receivable.list-anonymous",
    ),
    row(_on("receivable.get", "platform", "ok", "receivable"), "receivable.get-valid"),
    row(
        _on("receivable.get", "platform", "not_found", "other_receivable"),
        "receivable.get-other-tenant",
    ),
    row(
        _on("receivable.get", "few_scopes", "forbidden", "receivable"),
        "receivable.get-missing-scope",
    ),
    row(
        _on("receivable.get", "anonymous", "unauthenticated", "receivable"),
        "receivable.get-anonymous",
    ),
    row(
        _on("receivable.get", "platform", "ok", "receivable", rest_id=True),
        "receivable.get-rest-id",
    ),
    row(_on("receivable.node", "platform", "ok", "receivable"), "receivable.node-valid"),
    row(
        _on("receivable.node", "few_scopes", "forbidden", "receivable"),
        "receivable.node-missing-scope",
    ),
    row(
        _on("receivable.node", "anonymous", "unauthenticated", "receivable"),
        "receivable.node-anonymous",
    ),
    row(
        _mutation_on(
            "receivable.update",
            "platform",
            "ok",
            "receivable",
            {"metadata": {"order": "43"}},
            lambda i: {"id": i, "metadata": {"order": "43"}},
            verb="json",
        ),
        "receivable.update-valid",
    ),
    row(
        _mutation_on(
            "receivable.update",
            "platform",
            "invalid",
            "receivable",
            {"metadata": {"note": "a\x00b"}},
            lambda i: {"id": i, "metadata": {"note": "a\x00b"}},
        ),
        "receivable.update-nul",
    ),
    row(
        _mutation_on(
            "receivable.update",
            "platform",
            "not_found",
            "other_receivable",
            {"metadata": {}},
            lambda i: {"id": i, "metadata": {}},
        ),
        "receivable.update-other-tenant",
    ),
    row(
        _mutation_on(
            "receivable.cancel",
            "platform",
            "ok",
            "receivable",
            {"reason": "business_decision"},
            lambda i: {"id": i, "reason": "BUSINESS_DECISION"},
        ),
        "receivable.cancel-valid",
    ),
    row(
        _mutation_on(
            "receivable.cancel",
            "platform",
            "invalid",
            "receivable",
            {"reason": "nope"},
            lambda i: {"id": i, "reason": "NOPE"},
        ),
        "receivable.cancel-bad-reason",
    ),
    row(
        _mutation_on(
            "receivable.cancel",
            "platform",
            "not_found",
            "other_receivable",
            {"reason": "business_decision"},
            lambda i: {"id": i, "reason": "BUSINESS_DECISION"},
        ),
        "receivable.cancel-other-tenant",
    ),
    row(
        Case(
            "receivable.cancel",
            "platform",
            lambda w: (
                "POST",
                "/v1/receivables/rcv_unknown/cancel",
                {"json": {"reason": "business_decision"}},
            ),
            lambda w: {"v": {"id": "rcv_unknown", "reason": "BUSINESS_DECISION"}},
            "not_found",
        ),
        "receivable.cancel-unknown-id",
    ),
    row(
        _mutation_on(
            "receivable.contact_add",
            "platform",
            "ok",
            "receivable",
            {"email": "cfo@engie.test", "first_name": "Marie", "level": 2},
            lambda i: {
                "receivableId": i,
                "contact": {"email": "cfo@engie.test", "firstName": "Marie", "level": 2},
            },
        ),
        "receivable.contact-valid",
    ),
    row(
        _mutation_on(
            "receivable.contact_add",
            "platform",
            "invalid",
            "receivable",
            {"email": "nope"},
            lambda i: {"receivableId": i, "contact": {"email": "nope"}},
        ),
        "receivable.contact-bad-email",
    ),
    row(
        _mutation_on(
            "receivable.contact_add",
            "platform",
            "invalid",
            "receivable",
            {"email": "cfo@engie.test", "level": 99},
            lambda i: {"receivableId": i, "contact": {"email": "cfo@engie.test", "level": 99}},
        ),
        "receivable.contact-out-of-range",
    ),
    row(
        _mutation_on(
            "receivable.evidence",
            "platform",
            "conflict",
            "receivable",
            {"statement": "Signed PO attached"},
            lambda i: {"id": i, "statement": "Signed PO attached"},
        ),
        "receivable.evidence-not-disputed",
    ),
    row(
        _mutation_on(
            "receivable.partial_payment",
            "platform",
            "conflict",
            "receivable",
            {"action": "continue_recovery"},
            lambda i: {"id": i, "action": "CONTINUE_RECOVERY"},
        ),
        "receivable.partial-payment-not-awaiting",
    ),
    row(
        _mutation_on(
            "receivable.partial_payment",
            "platform",
            "not_found",
            "other_receivable",
            {"action": "mark_complete"},
            lambda i: {"id": i, "action": "MARK_COMPLETE"},
        ),
        "receivable.partial-payment-other-tenant",
    ),
    row(
        _mutation_on(
            "receivable.evidence",
            "platform",
            "ok",
            "receivable",
            {"statement": "Signed PO attached"},
            lambda i: {"id": i, "statement": "Signed PO attached"},
            prepare=_evidence_requested,
        ),
        "receivable.evidence-valid",
    ),
    row(
        _mutation_on(
            "receivable.partial_payment",
            "platform",
            "ok",
            "receivable",
            {"action": "continue_recovery"},
            lambda i: {"id": i, "action": "CONTINUE_RECOVERY"},
            prepare=_partly_paid,
        ),
        "receivable.partial-payment-valid",
    ),
    # reports and commission
    row(
        _query(
            "reports.stats",
            "platform",
            "ok",
            "/v1/reports/stats?period=all_time",
            {"period": "ALL_TIME"},
        ),
        "reports.stats-valid",
    ),
    row(
        _query(
            "reports.stats",
            "platform",
            "invalid",
            "/v1/reports/stats?period=bogus",
            {"period": "BOGUS"},
        ),
        "reports.stats-bad-period",
    ),
    row(
        _query(
            "reports.stats",
            "platform",
            "ok",
            "/v1/reports/stats?period=all_time&currency=usd",
            {"period": "ALL_TIME", "currency": "usd"},
        ),
        "reports.stats-currency",
    ),
    row(
        _query(
            "reports.stats",
            "platform",
            "invalid",
            "/v1/reports/stats?currency=XYZ",
            {"period": "ALL_TIME", "currency": "XYZ"},
        ),
        "reports.stats-bad-currency",
    ),
    row(
        _query(
            "reports.stats", "few_scopes", "forbidden", "/v1/reports/stats", {"period": "ALL_TIME"}
        ),
        "reports.stats-missing-scope",
    ),
    row(
        _query(
            "reports.stats",
            "anonymous",
            "unauthenticated",
            "/v1/reports/stats",
            {"period": "ALL_TIME"},
        ),
        "reports.stats-anonymous",
    ),
    row(
        _query("commission.rates", "platform", "ok", "/v1/commission/rates", {}),
        "commission.rates-valid",
    ),
    row(
        _query("commission.rates", "anonymous", "unauthenticated", "/v1/commission/rates", {}),
        "commission.rates-anonymous",
    ),
    row(
        Case(
            "commission.calculate",
            "platform",
            lambda w: (
                "POST",
                "/v1/commission/calculate",
                {"json": {"amount": 1200.0, "due_date": "2026-10-01"}},
            ),
            lambda w: {"amount": "1200.0", "dueDate": "2026-10-01"},
            "ok",
        ),
        "commission.calculate-valid",
    ),
    row(
        Case(
            "commission.calculate",
            "platform",
            lambda w: (
                "POST",
                "/v1/commission/calculate",
                {"json": {"amount": -1, "due_date": "2026-10-01"}},
            ),
            lambda w: {"amount": "-1", "dueDate": "2026-10-01"},
            "invalid",
        ),
        "commission.calculate-out-of-range",
    ),
    row(
        Case(
            "commission.calculate",
            "anonymous",
            lambda w: (
                "POST",
                "/v1/commission/calculate",
                {"json": {"amount": 1200.0, "due_date": "2026-10-01"}},
            ),
            lambda w: {"amount": "1200.0", "dueDate": "2026-10-01"},
            "unauthenticated",
        ),
        "commission.calculate-anonymous",
    ),
    # operator sign-in
    row(
        Case(
            "auth.login",
            "anonymous",
            lambda w: (
                "POST",
                "/api/login",
                {"json": {"email": "admin@tether.test", "password": "password"}},
            ),
            lambda w: {"v": {"email": "admin@tether.test", "password": "password"}},
            "ok",
        ),
        "auth.login-valid",
    ),
    row(
        Case(
            "auth.login",
            "anonymous",
            lambda w: (
                "POST",
                "/api/login",
                {"json": {"email": "admin@tether.test", "password": "wrong"}},
            ),
            lambda w: {"v": {"email": "admin@tether.test", "password": "wrong"}},
            "invalid",
        ),
        "auth.login-wrong-password",
    ),
    row(
        Case(
            "auth.login",
            "anonymous",
            lambda w: (
                "POST",
                "/api/login",
                {"json": {"email": "admin\x00@tether.test", "password": "password"}},
            ),
            lambda w: {"v": {"email": "admin\x00@tether.test", "password": "password"}},
            "invalid",
        ),
        "auth.login-nul",
    ),
    row(
        Case("auth.logout", "operator", lambda w: ("POST", "/api/logout", {}), lambda w: {}, "ok"),
        "auth.logout-valid",
    ),
    row(
        Case(
            "auth.logout",
            "anonymous",
            lambda w: ("POST", "/api/logout", {}),
            lambda w: {},
            "unauthenticated",
        ),
        "auth.logout-anonymous",
    ),
    row(_query("auth.me", "operator", "ok", "/api/user", {}), "auth.me-valid"),
    row(_query("auth.me", "anonymous", "unauthenticated", "/api/user", {}), "auth.me-anonymous"),
    # uploads
    row(_query("upload.list", "operator", "ok", "/api/admin/uploads", {}), "upload.list-valid"),
    row(
        _query(
            "upload.list",
            "operator",
            "ok",
            "/api/admin/uploads?status=failed",
            {"status": "FAILED"},
        ),
        "upload.list-status",
    ),
    row(
        _query(
            "upload.list",
            "operator",
            "invalid",
            "/api/admin/uploads?status=bogus",
            {"status": "BOGUS"},
        ),
        "upload.list-bad-status",
    ),
    row(
        _query("upload.list", "anonymous", "unauthenticated", "/api/admin/uploads", {}),
        "upload.list-anonymous",
    ),
    row(
        _query("upload.list", "platform", "unauthenticated", "/api/admin/uploads", {}),
        "upload.list-platform",
    ),
    *(
        row(
            Case(
                "receivable.extract",
                who,
                lambda w, uid=uid, content=content: (
                    "FILE",
                    "/v1/receivables/ocr",
                    {
                        "form": {"user_id": getattr(w, uid)},
                        "file": ("invoice.pdf", content, "application/pdf"),
                    },
                ),
                lambda w, uid=uid: {"userId": getattr(w, uid)},
                expect,
            ),
            f"receivable.extract-{label}",
        )
        for label, who, uid, content, expect in [
            ("valid", "platform", "user", INVOICE_PDF, "ok"),
            ("not-a-pdf", "platform", "user", b"hello, not a PDF", "invalid"),
            ("other-tenant-user", "platform", "other_user", INVOICE_PDF, "not_found"),
            ("missing-scope", "few_scopes", "user", INVOICE_PDF, "forbidden"),
            ("anonymous", "anonymous", "user", INVOICE_PDF, "unauthenticated"),
        ]
    ),
    row(
        Case(
            "upload.create",
            "operator",
            lambda w: ("UPLOAD", csv_text(4, bad_every=3), {}),
            lambda w: {},
            "ok",
        ),
        "upload.create-valid",
    ),
    row(
        Case("upload.create", "operator", lambda w: ("UPLOAD", "", {}), lambda w: {}, "invalid"),
        "upload.create-empty",
    ),
    row(
        Case(
            "upload.create",
            "operator",
            lambda w: ("UPLOAD", "a,b\n1\x00,2\n", {}),
            lambda w: {},
            "invalid",
        ),
        "upload.create-nul",
    ),
    row(
        Case(
            "upload.create",
            "anonymous",
            lambda w: ("UPLOAD", csv_text(2), {}),
            lambda w: {},
            "unauthenticated",
        ),
        "upload.create-anonymous",
    ),
    row(_on("upload.get", "operator", "ok", "upload"), "upload.get-valid"),
    row(
        _on("upload.get", "operator", "ok", "upload", prepare=_huge_upload),
        "upload.get-success-rate-203-of-20000",
    ),
    row(_on("upload.get", "anonymous", "unauthenticated", "upload"), "upload.get-anonymous"),
    row(_on("upload.get", "operator", "ok", "upload", rest_id=True), "upload.get-rest-id"),
    row(_on("upload.get", "platform", "unauthenticated", "upload"), "upload.get-platform"),
    row(_on("upload.node", "operator", "ok", "upload"), "upload.node-valid"),
    row(_on("upload.node", "anonymous", "unauthenticated", "upload"), "upload.node-anonymous"),
    row(_on("upload.node", "platform", "unauthenticated", "upload"), "upload.node-platform"),
    row(
        Case(
            "upload.get",
            "operator",
            lambda w: ("GET", "/api/admin/uploads/999999", {}),
            lambda w: {"id": gid("Upload", 999999)},
            "not_found",
        ),
        "upload.get-unknown-id",
    ),
    row(_on("upload.status", "operator", "ok", "upload"), "upload.status-valid"),
    row(_on("upload.debtors", "operator", "ok", "upload"), "upload.debtors-valid"),
    row(
        Case(
            "upload.debtors",
            "operator",
            lambda w: ("GET", f"/api/admin/uploads/{w.upload}/debtors?validation_status=valid", {}),
            lambda w: {"id": gid("Upload", w.upload), "validationStatus": "VALID"},
            "ok",
        ),
        "upload.debtors-filter",
    ),
    row(
        Case(
            "upload.debtors",
            "operator",
            lambda w: ("GET", f"/api/admin/uploads/{w.upload}/debtors?validation_status=bogus", {}),
            lambda w: {"id": gid("Upload", w.upload), "validationStatus": "BOGUS"},
            "invalid",
        ),
        "upload.debtors-bad-filter",
    ),
    row(
        _mutation_on(
            "upload.validate",
            "operator",
            "ok",
            "upload",
            None,
            lambda i: {"uploadId": i},
            relay="Upload",
        ),
        "upload.validate-valid",
    ),
    row(
        Case(
            "upload.validate",
            "operator",
            lambda w: ("POST", "/api/admin/uploads/999999/validate", {}),
            lambda w: {"v": {"uploadId": gid("Upload", 999999)}},
            "not_found",
        ),
        "upload.validate-unknown-id",
    ),
    row(_on("upload.validation_stats", "operator", "ok", "upload"), "upload.stats-valid"),
    row(
        _on("upload.validation_stats", "anonymous", "unauthenticated", "upload"),
        "upload.stats-anonymous",
    ),
    row(
        Case(
            "upload.status",
            "operator",
            lambda w: ("GET", "/api/admin/uploads/999999/status", {}),
            lambda w: {"id": gid("Upload", 999999)},
            "not_found",
        ),
        "upload.status-unknown-id",
    ),
    row(
        _query("billing.list", "operator", "ok", "/api/admin/billing-attempts", {}),
        "billing.list-valid",
    ),
    row(
        _query(
            "billing.list",
            "operator",
            "ok",
            "/api/admin/billing-attempts?status=pending",
            {"status": "PENDING"},
        ),
        "billing.list-status",
    ),
    row(
        _query(
            "billing.list",
            "operator",
            "invalid",
            "/api/admin/billing-attempts?status=paid",
            {"status": "PAID"},
        ),
        "billing.list-bad-status",
    ),
    row(
        _query("billing.list", "anonymous", "unauthenticated", "/api/admin/billing-attempts", {}),
        "billing.list-anonymous",
    ),
    row(
        _mutation_on(
            "sepa.pain008",
            "operator",
            "ok",
            "upload",
            None,
            lambda i: {"uploadId": i},
            relay="Upload",
        ),
        "sepa.pain008-valid",
    ),
    row(
        _mutation_on(
            "sepa.pain008",
            "operator",
            "invalid",
            "upload",
            None,
            lambda i: {"uploadId": i},
            relay="Upload",
            prepare=_exported_report,
        ),
        "sepa.pain008-nothing-left",
    ),
    row(
        Case(
            "sepa.pain008",
            "operator",
            lambda w: ("POST", "/api/admin/uploads/999999/sepa/pain008", {}),
            lambda w: {"v": {"uploadId": gid("Upload", 999999)}},
            "not_found",
        ),
        "sepa.pain008-unknown-id",
    ),
    row(
        _mutation_on(
            "sepa.pain008",
            "anonymous",
            "unauthenticated",
            "upload",
            None,
            lambda i: {"uploadId": i},
            relay="Upload",
        ),
        "sepa.pain008-anonymous",
    ),
    row(
        _pain002_case("operator", "ok", lambda w: w.pain002, prepare=_exported_report),  # type: ignore[attr-defined]
        "sepa.pain002-valid",
    ),
    row(_pain002_case("operator", "invalid", lambda w: b"not xml"), "sepa.pain002-not-xml"),
    row(
        _pain002_case("anonymous", "unauthenticated", lambda w: b"<Document/>"),
        "sepa.pain002-anonymous",
    ),
    row(_query("dashboard", "operator", "ok", "/api/admin/dashboard", {}), "dashboard-valid"),
    row(
        _query("dashboard", "anonymous", "unauthenticated", "/api/admin/dashboard", {}),
        "dashboard-anonymous",
    ),
    # debtors
    row(_query("debtor.list", "operator", "ok", "/api/admin/debtors", {}), "debtor.list-valid"),
    row(
        _query("debtor.list", "operator", "ok", "/api/admin/debtors?country=ES", {"country": "ES"}),
        "debtor.list-country",
    ),
    row(
        _query(
            "debtor.list",
            "operator",
            "invalid",
            "/api/admin/debtors?status=bogus",
            {"status": "BOGUS"},
        ),
        "debtor.list-bad-status",
    ),
    row(
        _query("debtor.list", "anonymous", "unauthenticated", "/api/admin/debtors", {}),
        "debtor.list-anonymous",
    ),
    *(
        row(
            _query(op, "operator", expect, f"{path}?{param}={value}", {variable: value}),
            f"{op}-{param}-{label}",
        )
        for op, path, param, variable in (
            ("debtor.list", "/api/admin/debtors", "upload_id", "uploadId"),
            ("vop_log.list", "/api/admin/vop-logs", "upload_id", "uploadId"),
            ("vop_log.list", "/api/admin/vop-logs", "debtor_id", "debtorId"),
            ("billing.list", "/api/admin/billing-attempts", "upload_id", "uploadId"),
            ("billing.list", "/api/admin/billing-attempts", "debtor_id", "debtorId"),
        )
        for label, value, expect in (
            ("unknown", "999999", "ok"),
            ("negative", "-1", "ok"),
            ("zero", "0", "ok"),
            ("not-integer", "abc", "invalid"),
            ("beyond-range", "99999999999", "invalid"),
        )
    ),
    # VOP logs
    row(
        _query("vop_log.list", "operator", "ok", "/api/admin/vop-logs", {}),
        "vop_log.list-valid",
    ),
    row(
        _query(
            "vop_log.list",
            "operator",
            "ok",
            "/api/admin/vop-logs?result=verified",
            {"result": "VERIFIED"},
        ),
        "vop_log.list-result",
    ),
    row(
        _query(
            "vop_log.list",
            "operator",
            "invalid",
            "/api/admin/vop-logs?result=bogus",
            {"result": "BOGUS"},
        ),
        "vop_log.list-bad-result",
    ),
    row(
        _query("vop_log.list", "anonymous", "unauthenticated", "/api/admin/vop-logs", {}),
        "vop_log.list-anonymous",
    ),
    row(
        _query("vop_log.list", "platform", "unauthenticated", "/api/admin/vop-logs", {}),
        "vop_log.list-platform",
    ),
    row(_on("debtor.get", "operator", "ok", "debtor"), "debtor.get-valid"),
    row(
        Case(
            "debtor.get",
            "operator",
            lambda w: ("GET", "/api/admin/debtors/999999", {}),
            lambda w: {"id": gid("Debtor", 999999)},
            "not_found",
        ),
        "debtor.get-unknown-id",
    ),
    row(_on("debtor.get", "platform", "unauthenticated", "debtor"), "debtor.get-platform"),
    row(_on("debtor.get", "operator", "ok", "debtor", rest_id=True), "debtor.get-rest-id"),
    row(_on("debtor.node", "operator", "ok", "debtor"), "debtor.node-valid"),
    row(_on("debtor.node", "platform", "unauthenticated", "debtor"), "debtor.node-platform"),
    row(
        _mutation_on(
            "debtor.update",
            "operator",
            "ok",
            "debtor",
            {"raw_data": {"city": "Sevilla"}},
            lambda i: {"debtorId": i, "rawData": {"city": "Sevilla"}},
            relay="Debtor",
        ),
        "debtor.update-valid",
    ),
    row(
        _mutation_on(
            "debtor.update",
            "operator",
            "invalid",
            "debtor",
            {"raw_data": {"city": "Se\x00villa"}},
            lambda i: {"debtorId": i, "rawData": {"city": "Se\x00villa"}},
            relay="Debtor",
        ),
        "debtor.update-nul",
    ),
    row(
        _mutation_on(
            "debtor.update",
            "operator",
            "invalid",
            "debtor",
            {"raw_data": "not an object"},
            lambda i: {"debtorId": i, "rawData": "not an object"},
            relay="Debtor",
        ),
        "debtor.update-wrong-type",
    ),
    row(
        _mutation_on(
            "debtor.validate",
            "operator",
            "ok",
            "debtor",
            None,
            lambda i: {"debtorId": i},
            relay="Debtor",
        ),
        "debtor.validate-valid",
    ),
    row(
        Case(
            "debtor.validate",
            "operator",
            lambda w: ("POST", "/api/admin/debtors/999999/validate", {}),
            lambda w: {"v": {"debtorId": gid("Debtor", 999999)}},
            "not_found",
        ),
        "debtor.validate-unknown-id",
    ),
    row(
        _mutation_on(
            "debtor.update",
            "operator",
            "conflict",
            "debtor",
            {"raw_data": {"city": "Sevilla"}},
            lambda i: {"debtorId": i, "rawData": {"city": "Sevilla"}},
            relay="Debtor",
            prepare=_debtor_in_collection,
        ),
        "debtor.update-in-collection",
    ),
    row(
        _mutation_on(
            "debtor.validate",
            "operator",
            "conflict",
            "debtor",
            None,
            lambda i: {"debtorId": i},
            relay="Debtor",
            prepare=_debtor_in_collection,
        ),
        "debtor.validate-in-collection",
    ),
]


# --- Running one case through each face --------------------------------------------------------


def rest_outcome(op: Operation, response: httpx.Response) -> Outcome:
    """REST's answer in shared terms."""
    assert response.status_code < 500, response.text
    if response.status_code == 204:  # DELETE: no body
        return Outcome("ok", data=op.rest_data(None))
    kind = OUTCOME_OF_STATUS[response.status_code]
    # A file download (pain.008) is read as it came; every other answer is JSON.
    xml = response.headers.get("content-type", "").startswith("application/xml")
    body = response.content if xml else response.json()
    if kind == "ok":
        return Outcome("ok", data=op.rest_data(body))
    if "error" in body:  # /v1, /oauth
        return Outcome(kind, body["error"]["code"], body["error"].get("field"))
    fields = list((body.get("errors") or {}).keys())  # /api
    return Outcome(kind, None, fields[0] if fields else None)


def _snake(path: str) -> str:
    """GraphQL spelling back to REST's, only to compare: ``issueDate`` → ``issue_date``."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", path).lower()


def _from_field(value: str | None) -> str | None:
    """A GraphQL error's field in REST spelling, provided it was spelt the GraphQL way."""
    if not value:
        return None
    if value in REST_NAME_OF_ARGUMENT:
        return REST_NAME_OF_ARGUMENT[value]
    # A mutation's one `input` argument is what REST takes as the body.
    value = value.removeprefix(f"{MUTATION_INPUT}.")
    if value == MUTATION_INPUT:
        return None
    # A field GraphQL sent in snake_case is a disagreement: keep it distinguishable.
    return _snake(value) if camel(value) == value else f"<snake_case on GraphQL: {value}>"


# graphql-core's variable coercion: "Variable '$v' has invalid value at .invoice.amount: …".
_VARIABLE = re.compile(r"^Variable '\$(\w+)' has invalid value(?: at \.([\w.\[\]]+))?:")


def _variable_field(variable: str, path: str | None) -> str | None:
    """The field a coercion error names: ``$v`` is a mutation's input, others are arguments."""
    if variable == "v":
        return path
    return f"{variable}.{path}" if path else variable


def gql_outcome(op: Operation, body: dict[str, Any]) -> Outcome:
    """GraphQL's answer in shared terms."""
    errors = body.get("errors") or []
    if errors:
        first = errors[0]
        assert first["message"] != "Unexpected error.", body
        ext = first.get("extensions") or {}
        code = ext.get("code")
        if code in OUTCOME_OF_GRAPHQL_CODE:
            kind, rest_code = OUTCOME_OF_GRAPHQL_CODE[code]
            if code == "BAD_USER_INPUT" and ext.get("errors"):
                detail = ext["errors"][0]
                return Outcome(kind, detail["code"], _from_field(detail.get("field")))
            coercion = _VARIABLE.match(first["message"])
            if code == "BAD_USER_INPUT" and coercion:
                return Outcome(kind, None, _from_field(_variable_field(*coercion.groups())))
            return Outcome(kind, rest_code)
        # A wrong type or an unknown enum value in a variable, refused before execution.
        where = _VARIABLE.match(first["message"])
        if where:
            return Outcome("invalid", None, _from_field(_variable_field(*where.groups())))
        raise AssertionError(f"a GraphQL error the table does not map: {body}")
    data: Any = body["data"]
    for key in op.gql_path:
        data = data[key]
    if data is None:
        # node(id) answers null for what is absent or out of reach (PRODUCT.md §1).
        return Outcome("not_found", "not_found")
    if op.payload and data["userErrors"]:
        error = data["userErrors"][0]
        kind = KIND_OF_USER_ERROR_CODE.get(error["code"], "invalid")
        return Outcome(kind, error["code"], _from_field(error["field"]))
    return Outcome("ok", data=op.gql_data(data))


async def send_rest(client: httpx.AsyncClient, case: Case, w: World) -> httpx.Response:
    method, url, kwargs = case.rest(w)
    headers = w.headers[case.who]
    if method == "UPLOAD":
        return await upload(client, headers, url)
    if method == "FILE":
        # A PDF for extraction: the file beside the form fields (user_id).
        name, content, ctype = kwargs["file"]
        return await client.post(
            url, data=kwargs["form"], files={"file": (name, content, ctype)}, headers=headers
        )
    return await client.request(method, url, headers=headers, **kwargs)


async def send_gql(client: httpx.AsyncClient, case: Case, op: Operation, w: World) -> Any:
    headers = w.headers[case.who]
    method, _, rest_kwargs = case.rest(w)
    if method in ("UPLOAD", "FILE"):
        if method == "UPLOAD":
            file = ("december_debtors.csv", case.rest(w)[1].encode(), "text/csv")
        else:
            file = rest_kwargs["file"]
        operations = {"query": op.document, "variables": {"v": {**case.gql(w), "file": None}}}
        response = await client.post(
            "/graphql",
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.v.file"]}),
            },
            files={"0": file},
            headers=headers,
        )
    else:
        response = await client.post(
            "/graphql", json={"query": op.document, "variables": case.gql(w)}, headers=headers
        )
    # The multipart endpoint refuses an anonymous caller before reading the body: a 401 that still
    # carries the GraphQL error body.
    assert response.status_code in (200, 401), response.text
    return response.json()


@pytest.fixture
async def worlds(
    client: httpx.AsyncClient, admin: Any, make_platform: Any, db: Any, clock: Any
) -> Callable[[str], Awaitable[World]]:
    async def make(tag: str) -> World:
        return await _arrange(client, make_platform, db, clock, tag)

    return make


@pytest.mark.parametrize("case", CASES)
async def test_both_faces_agree(
    client: httpx.AsyncClient, worlds: Callable[[str], Awaitable[World]], db: Any, case: Case
) -> None:
    op = OPERATIONS[case.op]
    first = await worlds("r")
    second = await worlds("g") if op.mutates else first
    for w in {id(first): first, id(second): second}.values():
        if case.prepare is not None:
            await case.prepare(client, w, db)
    rest = rest_outcome(op, await send_rest(client, case, first))
    graphql = gql_outcome(op, await send_gql(client, case, op, second))
    assert rest.kind == case.expect, rest
    assert rest.matches(graphql), f"\nREST:    {rest}\nGraphQL: {graphql}"


# --- The table covers every operation ----------------------------------------------------------


def _routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        path = getattr(route, "path", "")
        if not path.startswith(("/v1", "/api", "/oauth", "/onboarding", "/openapi", "/docs")):
            continue
        found |= {(m, path) for m in methods if m != "HEAD"}
    return found


async def test_every_rest_route_is_in_the_table_or_rest_only(app: Any) -> None:
    shared = {op.rest_route for op in OPERATIONS.values()}
    routes = _routes(app)
    assert routes - shared - set(REST_ONLY) == set(), "add these to OPERATIONS or REST_ONLY"
    assert (shared | set(REST_ONLY)) - routes == set(), "the table names routes that are gone"


ROOT_FIELDS = (
    "{ __schema { queryType { fields { name } } mutationType { fields { name } } "
    "subscriptionType { fields { name } } } }"
)


async def test_every_graphql_root_field_is_in_the_table_or_graphql_only(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": ROOT_FIELDS},
    )
    schema = response.json()["data"]["__schema"]
    fields = (
        {f"Query.{f['name']}" for f in schema["queryType"]["fields"]}
        | {f"Mutation.{f['name']}" for f in schema["mutationType"]["fields"]}
        | {f"Subscription.{f['name']}" for f in schema["subscriptionType"]["fields"]}
    )
    shared = {op.graphql_field for op in OPERATIONS.values()}
    assert fields - shared - set(GRAPHQL_ONLY) == set(), "add these to OPERATIONS or GRAPHQL_ONLY"
    assert (shared | set(GRAPHQL_ONLY)) - fields == set(), "the table names fields that are gone"


def test_every_operation_has_a_valid_and_a_refused_case() -> None:
    kinds: dict[str, set[str]] = {name: set() for name in OPERATIONS}
    for param in CASES:
        case = param.values[0]
        kinds[case.op].add("ok" if case.expect == "ok" else "refused")
    missing = {
        name: {"ok", "refused"} - seen for name, seen in kinds.items() if seen != {"ok", "refused"}
    }
    assert not missing, missing


# --- Reads: every documented GET, the whole REST object against the graph's ---------------------
#
# Each row of ``READS`` is one documented REST read and the GraphQL query that asks the graph for
# the same data. Both answers are flattened into ``{path: value}`` (GraphQL paths in snake_case,
# ``nodes`` wrappers dropped, Relay ids read back to the REST key) and normalised (decimals,
# times, enum spellings); then every path of the REST answer must carry the same value in the
# GraphQL one, after the row's ``renames`` (where the seed nests what the graph keeps flat). A
# REST field the graph does not show fails the row until it is given a reason in ``rest_only``.

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
ENUM_MEMBER = re.compile(r"^[A-Z][A-Z0-9_]*$")


def normalised(value: Any) -> Any:
    """A leaf value as both faces' spellings of it compare equal."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        if ISO_TIME.match(value):
            from datetime import datetime

            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        if NUMBER.match(value):
            return Decimal(value)
        if ENUM_MEMBER.match(value):
            # GraphQL shows enum members (COMPLETED, LIKELY_VERIFIED), REST their values.
            return value.lower()
    return value


def _relay_key(value: Any) -> Any:
    """The REST key inside a Relay id (``Upload:5`` → ``5``); other values unchanged."""
    if not isinstance(value, str):
        return value
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except ValueError:
        return value
    type_name, sep, key = decoded.partition(":")
    return key if sep and type_name[:1].isupper() and type_name.isalnum() else value


def flattened(value: Any, prefix: str = "", *, graphql: bool = False) -> dict[str, Any]:
    """``{"a.b[0].c": leaf}`` of a JSON answer; GraphQL's paths in REST's spelling."""
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, child in value.items():
            if graphql and key == "nodes":
                found.update(flattened(child, prefix, graphql=True))
                continue
            name = _snake(key) if graphql else key
            found.update(flattened(child, f"{prefix}.{name}" if prefix else name, graphql=graphql))
        return found
    if isinstance(value, list):
        found = {}
        for i, child in enumerate(value):
            found.update(flattened(child, f"{prefix}[{i}]", graphql=graphql))
        return found
    if graphql and (prefix == "id" or prefix.endswith(".id")):
        value = _relay_key(value)
    return {prefix: normalised(value)}


def _renamed(path: str, renames: tuple[tuple[str, str], ...]) -> str:
    """REST's path in the graph: the first matching rename, within each item of a list."""
    item, _, inner = path.partition("].") if path.startswith("[") else ("", "", path)
    head = f"{item}]." if item else ""
    for rest_prefix, graph_prefix in renames:
        if inner.startswith(rest_prefix):
            return head + graph_prefix + inner[len(rest_prefix) :]
    return path


@dataclass(frozen=True)
class Read:
    """One documented GET and the GraphQL query for the same data."""

    route: tuple[str, str]
    who: str
    url: Callable[[World], str]
    document: str
    variables: Callable[[World], dict[str, Any]]
    rest_data: Callable[[Any], Any]
    gql_path: tuple[str, ...]
    renames: tuple[tuple[str, str], ...] = ()
    # REST fields the graph does not show, and why.
    rest_only: tuple[str, ...] = ()
    # Lists REST and the graph order differently, compared by id.
    by_id: tuple[str, ...] = ()


UPLOAD_ALL = """id filename originalFilename fileSize mimeType status totalRecords processedRecords
  failedRecords successRate progress isComplete errorMessage processingStartedAt
  processingCompletedAt createdAt updatedAt debtorsCount"""
DEBTOR_ALL = """id uploadId ibanMasked bankName bankCode bic firstName lastName fullName email phone
  primaryPhone nationalId birthDate street streetNumber floor door apartment postcode city
  province country fullAddress amount currency sepaType status riskClass ibanValid nameMatched
  externalReference validationStatus validationErrors validatedAt rawData createdAt updatedAt"""
VOP_LOG_ALL = """id debtorId uploadId ibanMasked ibanValid bankIdentified bankName bic country
  vopScore scoreLabel result epcCode providerName nameRatio isPositive isNegative createdAt"""
ATTEMPT_ALL = """id debtorId uploadId transactionId uniqueId amount currency status attemptNumber
  midReference errorCode errorMessage isApproved isFinal canRetry channel nextRetryAt
  processedAt createdAt updatedAt"""
CONTACT_ALL = "id firstName lastName email phone jobTitle level"
RECEIVABLE_ALL = f"""id user {{ id }} status amount currency invoiceNumbers issueDate dueDate
  serviceDescription amountBeforeTax taxAmount debtorCompanyName debtorCompanyType debtorSiret
  debtorVatNumber debtorAddress metadata cancelReason cancelNotes indemnityDue createdAt
  commission {{ rate amount net }}
  recoveryProgress {{ amountRecovered amountRemaining phase lastAction nextActionAt actionsCount
    awaitingDecision warnings }}
  contacts(first: 100) {{ nodes {{ {CONTACT_ALL} }} }}"""
# The seed nests the invoice and the debtor; the graph keeps a receivable's fields flat.
RECEIVABLE_RENAMES = (
    ("user_id", "user.id"),
    ("invoice.numbers", "invoice_numbers"),
    ("invoice.", ""),
    ("debtor.contacts", "contacts"),
    ("debtor.", "debtor_"),
    ("cancellation.reason", "cancel_reason"),
    ("cancellation.notes", "cancel_notes"),
    ("cancellation", "cancel_reason"),  # null when not cancelled
)
USER_ALL = """id email status createdAt kybStatus stripeAccountStatus
  capabilities { sendReceivables receivePayments }
  requirements { currentlyDue eventuallyDue pastDue }"""
WEBHOOK_ALL = "id url events description active disabledAt createdAt"


def _gql_root(field: str, selection: str, args: str = "") -> str:
    return f"{{ {field}{args} {{ {selection} }} }}"


async def _billed(client: httpx.AsyncClient, w: World) -> None:
    """Bill the world's upload, so billing attempts exist to read."""
    body = (
        await client.post(
            "/graphql",
            json={
                "query": "mutation($id: ID!) { billingStart(input: {uploadId: $id}) "
                "{ started userErrors { code } } }",
                "variables": {"id": str(w.upload)},
            },
            headers=w.headers["operator"],
        )
    ).json()
    assert body["data"]["billingStart"]["userErrors"] == [], body


READS: dict[str, Read] = {
    "auth.me": Read(
        ("GET", "/api/user"),
        "operator",
        lambda w: "/api/user",
        "{ me { databaseId email name } }",
        lambda w: {},
        lambda b: b,
        ("me",),
        # The operator API shows the numeric id; the graph's User.id is the Relay id.
        renames=(("id", "database_id"),),
    ),
    "dashboard": Read(
        ("GET", "/api/admin/dashboard"),
        "operator",
        lambda w: "/api/admin/dashboard",
        f"""{{ dashboard {{ uploads {{ total pending processing completed failed }}
          debtors {{ total byStatus {{ pending processing recovered failed }} }}
          latestUploads {{ {UPLOAD_ALL} }} latestDebtors {{ {DEBTOR_ALL} }} }} }}""",
        lambda w: {},
        lambda b: {k: v for k, v in b["data"].items()},
        ("dashboard",),
        renames=(
            ("recent_activity.latest_uploads", "latest_uploads"),
            ("recent_activity.latest_debtors", "latest_debtors"),
        ),
        # by_country is a map keyed by country in the seed, a list of {country, count} in the
        # graph: the "dashboard" operation above compares the two shapes.
        rest_only=("debtors.by_country.",),
    ),
    "upload.list": Read(
        ("GET", "/api/admin/uploads"),
        "operator",
        lambda w: "/api/admin/uploads",
        _gql_root("uploads", f"nodes {{ {UPLOAD_ALL} }}"),
        lambda w: {},
        lambda b: b["data"],
        ("uploads",),
    ),
    "upload.get": Read(
        ("GET", "/api/admin/uploads/{id}"),
        "operator",
        lambda w: f"/api/admin/uploads/{w.upload}",
        f"query($id: ID!) {{ upload(id: $id) {{ {UPLOAD_ALL} }} }}",
        lambda w: {"id": str(w.upload)},
        lambda b: b["data"],
        ("upload",),
    ),
    "upload.status": Read(
        ("GET", "/api/admin/uploads/{id}/status"),
        "operator",
        lambda w: f"/api/admin/uploads/{w.upload}/status",
        f"query($id: ID!) {{ node(id: $id) {{ ... on Upload {{ {UPLOAD_ALL} }} }} }}",
        lambda w: {"id": gid("Upload", w.upload)},
        lambda b: b["data"],
        ("node",),
    ),
    "upload.debtors": Read(
        ("GET", "/api/admin/uploads/{id}/debtors"),
        "operator",
        lambda w: f"/api/admin/uploads/{w.upload}/debtors",
        "query($id: ID!) { node(id: $id) { ... on Upload { debtors(first: 50) "
        f"{{ nodes {{ {DEBTOR_ALL} }} }} }} }} }}",
        lambda w: {"id": gid("Upload", w.upload)},
        lambda b: b["data"],
        ("node", "debtors"),
    ),
    "upload.validation_stats": Read(
        ("GET", "/api/admin/uploads/{id}/validation-stats"),
        "operator",
        lambda w: f"/api/admin/uploads/{w.upload}/validation-stats",
        "query($id: ID!) { node(id: $id) { ... on Upload { validationStats { "
        + " ".join(camel(k) for k in STATS)
        + " } } } }",
        lambda w: {"id": gid("Upload", w.upload)},
        lambda b: b["data"],
        ("node", "validationStats"),
    ),
    "debtor.list": Read(
        ("GET", "/api/admin/debtors"),
        "operator",
        lambda w: "/api/admin/debtors",
        _gql_root("debtors", f"nodes {{ {DEBTOR_ALL} }}"),
        lambda w: {},
        lambda b: b["data"],
        ("debtors",),
    ),
    "debtor.get": Read(
        ("GET", "/api/admin/debtors/{id}"),
        "operator",
        lambda w: f"/api/admin/debtors/{w.debtor}",
        f"""query($id: ID!) {{ debtor(id: $id) {{ {DEBTOR_ALL} upload {{ {UPLOAD_ALL} }}
          vopLogs(first: 100) {{ nodes {{ {VOP_LOG_ALL} }} }}
          billingAttempts(first: 100) {{ nodes {{ {ATTEMPT_ALL} }} }} }} }}""",
        lambda w: {"id": str(w.debtor)},
        lambda b: b["data"],
        ("debtor",),
        renames=(("vopLogs", "vop_logs"), ("billingAttempts", "billing_attempts")),
        by_id=("vopLogs", "billingAttempts", "vop_logs", "billing_attempts"),
    ),
    "vop_log.list": Read(
        ("GET", "/api/admin/vop-logs"),
        "operator",
        lambda w: "/api/admin/vop-logs",
        _gql_root("vopLogs", f"nodes {{ {VOP_LOG_ALL} }}"),
        lambda w: {},
        lambda b: b["data"],
        ("vopLogs",),
    ),
    "billing.list": Read(
        ("GET", "/api/admin/billing-attempts"),
        "operator",
        lambda w: "/api/admin/billing-attempts",
        _gql_root("billingAttempts", f"nodes {{ {ATTEMPT_ALL} }}"),
        lambda w: {},
        lambda b: b["data"],
        ("billingAttempts",),
    ),
    "user.get": Read(
        ("GET", "/v1/users/{id}"),
        "platform",
        lambda w: f"/v1/users/{w.user}",
        f"query($id: ID!) {{ user(id: $id) {{ {USER_ALL} }} }}",
        lambda w: {"id": w.user},
        lambda b: b,
        ("user",),
    ),
    "user.onboarding_status": Read(
        ("GET", "/v1/users/{id}/onboarding-status"),
        "platform",
        lambda w: f"/v1/users/{w.user}/onboarding-status",
        f"query($id: ID!) {{ user(id: $id) {{ {USER_ALL} }} }}",
        lambda w: {"id": w.user},
        lambda b: b,
        ("user",),
        renames=(("user_id", "id"), ("requirements", "requirements.currently_due")),
    ),
    "user.requirements": Read(
        ("GET", "/v1/users/{id}/requirements"),
        "platform",
        lambda w: f"/v1/users/{w.user}/requirements",
        f"query($id: ID!) {{ user(id: $id) {{ {USER_ALL} }} }}",
        lambda w: {"id": w.user},
        lambda b: b,
        ("user", "requirements"),
    ),
    "receivable.list": Read(
        ("GET", "/v1/receivables"),
        "platform",
        lambda w: "/v1/receivables",
        _gql_root("receivables", f"nodes {{ {RECEIVABLE_ALL} }}"),
        lambda w: {},
        lambda b: b["data"],
        ("receivables",),
        renames=RECEIVABLE_RENAMES,
    ),
    "receivable.get": Read(
        ("GET", "/v1/receivables/{id}"),
        "platform",
        lambda w: f"/v1/receivables/{w.receivable}",
        f"query($id: ID!) {{ receivable(id: $id) {{ {RECEIVABLE_ALL} }} }}",
        lambda w: {"id": w.receivable},
        lambda b: b,
        ("receivable",),
        renames=RECEIVABLE_RENAMES,
    ),
    "webhook.list": Read(
        ("GET", "/v1/webhooks"),
        "platform",
        lambda w: "/v1/webhooks",
        _gql_root("webhooks", f"nodes {{ {WEBHOOK_ALL} }}"),
        lambda w: {},
        lambda b: b,
        ("webhooks",),
    ),
    "reports.stats": Read(
        ("GET", "/v1/reports/stats"),
        "platform",
        lambda w: "/v1/reports/stats?period=all_time",
        "{ recoveryStats(period: ALL_TIME) { totalSent totalRecovered totalAmountSent "
        "totalAmountRecovered avgDaysToRecovery withPhoneSuccessRate withoutPhoneSuccessRate } }",
        lambda w: {},
        lambda b: b,
        ("recoveryStats",),
    ),
    "commission.rates": Read(
        ("GET", "/v1/commission/rates"),
        "platform",
        lambda w: "/v1/commission/rates",
        "{ commissionRates { minDays maxDays rate } }",
        lambda w: {},
        lambda b: b["data"],
        ("commissionRates",),
    ),
}


def _by_id(data: Any, keys: tuple[str, ...]) -> Any:
    """``data`` with the lists under ``keys`` sorted by their ids (the GraphQL Relay ids too)."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key in keys:
                items = value["nodes"] if isinstance(value, dict) else value
                value = sorted(items, key=lambda item: int(_relay_key(item["id"])))
            out[key] = _by_id(value, keys)
        return out
    return data


@pytest.mark.parametrize("name", list(READS))
async def test_reads_agree(
    client: httpx.AsyncClient,
    worlds: Callable[[str], Awaitable[World]],
    drain: Callable[[], Awaitable[None]],
    name: str,
) -> None:
    read = READS[name]
    w = await worlds("r")
    await _billed(client, w)
    # A cancelled receivable shows its cancellation (reason and notes) on both faces.
    cancelled = await client.post(
        f"/v1/receivables/{w.receivable}/cancel",
        json={"reason": "business_decision", "notes": "Settled in person"},
        headers=w.headers["platform"],
    )
    assert cancelled.status_code == 200, cancelled.text
    await drain()  # the gateway's answers settle before either face reads
    headers = w.headers[read.who]
    response = await client.get(read.url(w), headers=headers)
    assert response.status_code == 200, response.text
    rest = flattened(_by_id(read.rest_data(response.json()), read.by_id))
    body = (
        await client.post(
            "/graphql",
            json={"query": read.document, "variables": read.variables(w)},
            headers=headers,
        )
    ).json()
    assert "errors" not in body, body["errors"]
    data = body["data"]
    for key in read.gql_path:
        data = data[key]
    graph = flattened(_by_id(data, read.by_id), graphql=True)
    assert rest, "the REST answer is empty: the row proves nothing"
    missing, different = [], []
    for path, value in rest.items():
        if any(path.startswith(p) for p in read.rest_only):
            continue
        target = _renamed(path, read.renames)
        if target not in graph:
            missing.append(path)
        elif graph[target] != value:
            different.append(f"{path}: REST {value!r}, GraphQL {graph[target]!r}")
    assert not missing, f"REST fields the graph does not show (rename or rest_only): {missing}"
    assert not different, "\n".join(different)


def test_every_documented_read_is_in_the_read_table() -> None:
    reads = {op.rest_route for op in OPERATIONS.values() if op.rest_route[0] == "GET"}
    documented = reads - set(REST_ONLY)
    assert documented - {r.route for r in READS.values()} == set(), "add these to READS"
