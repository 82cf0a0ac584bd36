"""GraphQL fuzzing: documents generated from the committed SDL, sent as each principal.

hypothesis-graphql builds queries and mutations from ``debtgraph/schema/schema.graphql`` (valid
ones, and ones with one schema violation); each is sent over HTTP as an anonymous caller, an
operator, a platform key and a creditor token with few scopes. Whatever the document, the answer
is never an HTTP 500 and never the masked ``"Unexpected error."``. Generated ids are mostly real
ones (Relay and REST spellings of arranged objects), so documents reach the resolvers' bodies.

The budget is small and derandomized so the suite stays fast and repeatable;
``GRAPHQL_FUZZ_EXAMPLES`` raises it for a deeper local run. As in test_contract_fuzz.py, the
fuzzed app is a second instance on the same database, run on an event loop of its own thread,
because Hypothesis drives examples synchronously.
"""

from __future__ import annotations

import asyncio
import base64
import os
from datetime import UTC
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_graphql import Mode, nodes
from hypothesis_graphql import strategies as gql_st

from debtgraph.jobs.queue import InProcessJobQueue
from debtgraph.server.app import create_app, start_runtime, stop_runtime
from tests.integration.cleavr_support import bearer, create_user, creditor_token
from tests.integration.fuzz_support import bounded
from tests.integration.test_receivables import receivable_payload
from tests.integration.uploads_support import csv_text, upload

EXAMPLES = int(os.environ.get("GRAPHQL_FUZZ_EXAMPLES", "40"))
SDL = (Path(__file__).parents[2] / "debtgraph" / "schema" / "schema.graphql").read_text()
SCHEMA = graphql.build_schema(SDL)
# Signing out would revoke the operator token every later example is sent with.
MUTATIONS = [name for name in SCHEMA.mutation_type.fields if name != "logout"]  # type: ignore[union-attr]
UNEXPECTED = "Unexpected error."


def _gid(type_name: str, key: object) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


_NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


def _json_node() -> st.SearchStrategy[graphql.ValueNode]:
    """JSON literals: scalars, lists and objects, a few levels deep."""
    leaves = st.one_of(
        st.text(max_size=20).map(nodes.String),
        st.integers(-(2**40), 2**40).map(nodes.Int),
        st.booleans().map(nodes.Boolean),
        st.just(graphql.NullValueNode()),
    )

    def extend(children: st.SearchStrategy[graphql.ValueNode]) -> Any:
        fields = st.dictionaries(_NAMES, children, max_size=4).map(
            lambda d: nodes.Object(
                [
                    graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v)
                    for k, v in d.items()
                ]
            )
        )
        return st.lists(children, max_size=4).map(nodes.List) | fields

    return st.recursive(leaves, extend, max_leaves=10)


def custom_scalars(ids: list[str]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Value strategies for the SDL's custom scalars, and ids that mostly name real objects."""
    return {
        "ID": st.one_of(st.sampled_from(ids), st.text(max_size=24)).map(nodes.String),
        "Date": st.dates().map(lambda d: nodes.String(d.isoformat())),
        "DateTime": st.datetimes(timezones=st.just(UTC)).map(lambda d: nodes.String(d.isoformat())),
        "Decimal": st.one_of(
            st.decimals(allow_nan=False, allow_infinity=False, places=2).map(nodes.String),
            st.sampled_from(["0", "-1", "1e400", "NaN", "12.345", "abc"]).map(nodes.String),
        ),
        "JSON": _json_node(),
        # A file only arrives as a multipart part; inline, a client can send any literal.
        "File": st.one_of(st.text(max_size=10).map(nodes.String), st.just(nodes.Int(1))),
    }


def _strategies(ids: list[str]) -> list[tuple[str, st.SearchStrategy[str], int]]:
    scalars = custom_scalars(ids)
    negative = max(EXAMPLES // 4, 2)
    return [
        ("queries", gql_st.queries(SCHEMA, custom_scalars=scalars), EXAMPLES),
        ("mutations", gql_st.mutations(SCHEMA, fields=MUTATIONS, custom_scalars=scalars), EXAMPLES),
        (
            "invalid queries",
            gql_st.queries(SCHEMA, custom_scalars=scalars, mode=Mode.NEGATIVE),
            negative,
        ),
        (
            "invalid mutations",
            gql_st.mutations(SCHEMA, fields=MUTATIONS, custom_scalars=scalars, mode=Mode.NEGATIVE),
            negative,
        ),
    ]


def _why_not_fine(response: httpx.Response) -> str | None:
    """Why the answer is a server failure (None when it is not)."""
    if response.status_code >= 500:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    try:
        body = response.json()
    except ValueError:
        return None  # Strawberry's 400 for an unparseable body is text
    for error in (body.get("errors") or []) if isinstance(body, dict) else []:
        if error.get("message") == UNEXPECTED:
            return f"masked error at {error.get('path')}"
    return None


def fuzz(
    settings: Any,
    clock: Any,
    headers: dict[str, str],
    ids: list[str],
    *,
    only: list[str] | None = None,
) -> list[str]:
    """Send every generated document as one principal; one line per strategy that failed.

    ``only`` restricts generation to queries of those root fields (the self-test's).
    """
    loop = asyncio.new_event_loop()
    app = create_app(settings, clock=clock, periodic=False)
    runtime = app.state.runtime
    loop.run_until_complete(start_runtime(runtime, periodic=False))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.0.0.9", 1))
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    pool = runtime.services.engine.pool
    failures: list[str] = []

    def send(document: str) -> None:
        response = loop.run_until_complete(
            client.post("/graphql", json={"query": document}, headers=headers)
        )
        why = _why_not_fine(response)
        assert why is None, f"{why}\n{document}"
        # A job the document queued (billingStart's submission) runs in this process without
        # Redis and holds its own connection: the request's are what must be back by now.
        if isinstance(runtime.services.jobs, InProcessJobQueue):
            loop.run_until_complete(runtime.services.jobs.drain())
        held = pool.checkedout()
        assert held == 0, f"{held} connection(s) still held after the answer\n{document}"

    try:
        strategies = _strategies(ids)
        if only is not None:
            scalars = custom_scalars(ids)
            strategies = [
                ("queries", gql_st.queries(SCHEMA, fields=only, custom_scalars=scalars), 5)
            ]
        for label, strategy, budget in strategies:
            try:
                _run(strategy, send, budget)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{label}: {exc}")
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(stop_runtime(runtime))
        loop.close()
    return failures


def _run(strategy: st.SearchStrategy[str], send: Any, examples: int) -> None:
    @bounded(examples)
    @given(document=strategy)
    def one(document: str) -> None:
        send(document)

    one()


@pytest.fixture
async def arranged(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    make_platform: Any,
    db: Any,
    clock: Any,
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Credentials of each principal, and the ids of real objects in both spellings."""
    acme = await make_platform("Fuzz", redirect="https://fuzz.test/cb")
    user = await create_user(client, acme.api_key)
    created = await client.post(
        "/v1/receivables", json=receivable_payload(user["id"]), headers=bearer(acme.api_key)
    )
    assert created.status_code == 201, created.text
    uploaded = await upload(client, admin_headers, csv_text(3, bad_every=2))
    assert uploaded.status_code == 201, uploaded.text
    upload_id = uploaded.json()["data"]["id"]
    listed = await client.get(f"/api/admin/uploads/{upload_id}/debtors", headers=admin_headers)
    debtor_id = listed.json()["data"][0]["id"]
    me = await client.post(
        "/graphql",
        json={
            "query": "query($id: ID!) { node(id: $id) { ... on User { databaseId } } }",
            "variables": {"id": _gid("User", user["id"])},
        },
        headers=admin_headers,
    )
    numeric = me.json()["data"]["node"]["databaseId"]
    few = await creditor_token(db, clock, acme.platform.id, numeric, "users:read reports:read")
    principals = {
        "anonymous": {},
        "operator": admin_headers,
        "platform": bearer(acme.api_key),
        "creditor": bearer(few),
    }
    receivable_id = created.json()["id"]
    ids = [
        user["id"],
        _gid("User", user["id"]),
        receivable_id,
        _gid("Receivable", receivable_id),
        str(upload_id),
        _gid("Upload", upload_id),
        str(debtor_id),
        _gid("Debtor", debtor_id),
    ]
    return principals, ids


@pytest.mark.parametrize("who", ["anonymous", "operator", "platform", "creditor"])
async def test_no_generated_document_is_a_server_error(
    arranged: Any, settings: Any, clock: Any, who: str
) -> None:
    principals, ids = arranged
    failures = await asyncio.to_thread(fuzz, settings, clock, principals[who], ids)
    assert not failures, "\n\n".join(failures)


async def test_the_fuzzer_reports_a_masked_error(
    arranged: Any, settings: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fuzzer that cannot fail proves nothing: break one resolver and expect it reported.
    from debtgraph.resolvers import reports

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected")

    monkeypatch.setattr(reports, "commission_rates", broken)
    principals, ids = arranged
    failures = await asyncio.to_thread(
        lambda: fuzz(settings, clock, principals["platform"], ids, only=["commissionRates"])
    )
    assert any(UNEXPECTED in f or "masked error" in f for f in failures), failures


# What the fuzzer found, pinned one by one.


async def test_a_failed_root_field_leaves_no_connection_held(
    client: httpx.AsyncClient, admin_headers: dict[str, str], runtime: Any
) -> None:
    # graphql-core answers as soon as the non-null `debtors` fails; the `me` resolvers it left
    # running then opened a session after the request had closed its own: one pooled connection
    # held per such request until garbage collection, a pool a client could drain at will.
    pool = runtime.services.engine.pool
    for _ in range(3):
        response = await client.post(
            "/graphql",
            json={"query": "{ a: me { email } b: me { email } debtors(first: -1) { totalCount } }"},
            headers=admin_headers,
        )
        assert response.status_code == 200
        assert response.json()["data"] is None
    for _ in range(20):  # let any resolver left behind run to its end
        await asyncio.sleep(0.01)
    assert pool.checkedout() == 0
