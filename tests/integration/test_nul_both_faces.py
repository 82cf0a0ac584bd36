"""U+0000 in a receivable's text is refused the same way by both faces (PostgreSQL cannot store
it): REST's 400 ``invalid_character`` and GraphQL's error name the same field, nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from debtgraph.domain.receivables.models import Receivable
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, count, create_user
from tests.integration.test_receivables import receivable_payload

CREATE = """mutation($i: ReceivableCreateInput!) { receivableCreate(input: $i) {
  receivable { id } userErrors { field code message } } }"""


def _graphql_input(uid: str, description: str) -> dict[str, Any]:
    return {
        "userId": uid,
        "invoice": {
            "numbers": ["INV-NUL-1"],
            "issueDate": "2026-09-01",
            "dueDate": "2026-10-01",
            "serviceDescription": description,
            "amount": "1200.00",
            "amountBeforeTax": "1000",
            "taxAmount": "200",
        },
        "debtor": {"companyName": "Engie", "contacts": [{"email": "a@engie.test"}]},
    }


@pytest.mark.parametrize("description", ["Consulting\x00", "a\x00b", "\x00"])
async def test_nul_in_a_receivable_description_is_refused_by_both_faces(
    client: httpx.AsyncClient, make_platform: Any, db: Any, description: str
) -> None:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    payload = receivable_payload(uid)
    payload["invoice"]["service_description"] = description
    rest = await client.post("/v1/receivables", json=payload, headers=bearer(acme.api_key))
    assert rest.status_code == 400, rest.text
    error = rest.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_character", "invoice.service_description")
    body = await gql(client, CREATE, {"i": _graphql_input(uid, description)}, bearer(acme.api_key))
    # Refused before anything runs (no "Unexpected error.", which a NUL reaching PostgreSQL gave).
    assert body["data"] is None, body
    [refusal] = body["errors"]
    assert refusal["extensions"]["code"] == "BAD_USER_INPUT"
    assert [(e["code"], e["field"]) for e in refusal["extensions"]["errors"]] == [
        ("invalid_character", "input.invoice.serviceDescription")
    ]
    assert await count(db, Receivable) == 0
