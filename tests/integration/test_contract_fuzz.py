"""Schema-driven fuzzing of the REST faces against our own ``/openapi.json``, in-process.

Schemathesis loads the served document from a second app on the same database and sends
generated requests (schema-valid and schema-invalid) to every routed operation: no 5xx, every
status documented, bodies matching the documented schemas and content types. The budget is small
and derandomized so the suite stays fast and repeatable; ``CONTRACT_FUZZ_EXAMPLES`` raises it for a
deeper local run. Schemathesis drives the app from its own event-loop thread, so the fuzzed app is
a separate instance whose connections live in that loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from debtgraph.server.app import create_app
from tests.integration.cleavr_support import bearer, create_user
from tests.integration.fuzz_support import bounded
from tests.integration.test_receivables import receivable_payload
from tests.integration.uploads_support import csv_text, upload

EXAMPLES = int(os.environ.get("CONTRACT_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Signing out would revoke the token every other /api operation is fuzzed with.
ANONYMOUS_ONLY = {("/api/logout", "post")}


async def _arrange(client: httpx.AsyncClient, admin_headers: dict[str, str], make_platform: Any):
    """Real objects for the {id} paths, so generated requests also reach the handlers' bodies."""
    acme = await make_platform("Fuzz", redirect="https://fuzz.test/cb")
    user = await create_user(client, acme.api_key)
    created = await client.post(
        "/v1/receivables", json=receivable_payload(user["id"]), headers=bearer(acme.api_key)
    )
    assert created.status_code == 201, created.text
    uploaded = await upload(client, admin_headers, csv_text(3, bad_every=2))
    assert uploaded.status_code == 201, uploaded.text
    upload_id = uploaded.json()["data"]["id"]
    debtors = await client.get(f"/api/admin/uploads/{upload_id}/debtors", headers=admin_headers)
    ids = {
        "/v1/users/": user["id"],
        "/v1/receivables/": created.json()["id"],
        "/api/admin/uploads/": upload_id,
        "/api/admin/debtors/": debtors.json()["data"][0]["id"],
    }
    return acme.api_key, ids


def fuzz(
    app: Any,
    platform_key: str,
    operator_headers: dict[str, str],
    ids: dict[str, Any],
    *,
    examples: int = EXAMPLES,
    only: Callable[[str, str], bool] = lambda path, method: True,
) -> list[str]:
    """Fuzz every routed operation; return one line per operation and mode that failed."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            path, method = operation.path, operation.method.lower()
            if not only(path, method):
                continue
            if (path, method) in ANONYMOUS_ONLY:
                headers: dict[str, str] = {}
            elif path.startswith("/api/"):
                headers = operator_headers
            else:
                headers = bearer(platform_key)
            known = next((v for prefix, v in ids.items() if path.startswith(prefix)), None)
            pinned = [None, {"id": known}] if known is not None and "{id}" in path else [None]
            for mode in (
                schemathesis.GenerationMode.POSITIVE,
                schemathesis.GenerationMode.NEGATIVE,
            ):
                for path_parameters in pinned:
                    strategy = operation.as_strategy(
                        generation_mode=mode, path_parameters=path_parameters
                    )
                    try:
                        _run(strategy, headers, examples)
                    except Unsatisfiable:
                        # Nothing in the schema to violate (e.g. one free-form string parameter).
                        continue
                    except (Exception, BaseExceptionGroup) as exc:  # FailureGroup is a Base one
                        failures.append(f"{operation.label} [{mode.value}]: {exc}")
    finally:
        schemathesis_asgi.shutdown_lifespans()
    return failures


def _run(strategy: Any, headers: dict[str, str], examples: int) -> None:
    @bounded(examples)
    @given(case=strategy)
    def one(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    one()


@pytest.fixture
async def fuzz_target(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    make_platform: Any,
    settings: Any,
    clock: Any,
) -> tuple[Any, str, dict[str, str], dict[str, Any]]:
    """A second app on the test database with arranged objects and credentials."""
    key, ids = await _arrange(client, admin_headers, make_platform)
    return create_app(settings, clock=clock, periodic=False), key, admin_headers, ids


async def test_rest_faces_conform_to_openapi_json(fuzz_target: Any) -> None:
    failures = await asyncio.to_thread(fuzz, *fuzz_target)
    assert not failures, "\n\n".join(failures)


async def test_the_fuzzer_reports_a_server_error(
    fuzz_target: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fuzzer that cannot fail proves nothing: break one operation and expect it reported.
    from debtgraph.resolvers import reports

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected")

    monkeypatch.setattr(reports, "recovery_stats", broken)
    failures = await asyncio.to_thread(
        fuzz, *fuzz_target, examples=2, only=lambda path, method: path == "/v1/reports/stats"
    )
    assert failures
    assert all("GET /v1/reports/stats" in f for f in failures), failures
    assert "Server error" in failures[0], failures[0]


# What the fuzzer found, pinned one by one.


async def test_a_cleavr_error_about_no_field_leaves_field_out(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    response = await client.post(
        "/v1/receivables",
        content=b"\x00",
        headers={**bearer(acme.api_key), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert "field" not in response.json()["error"]


async def test_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    consent = await client.delete("/oauth/consent")
    assert consent.status_code == 405
    assert consent.headers["Allow"] == "GET, HEAD, POST"
    assert consent.json()["error"]["code"] == "method_not_allowed"
    onboarding = await client.put("/onboarding/abc")
    assert onboarding.headers["Allow"] == "GET, HEAD, POST"
    login = await client.get("/api/login")
    assert login.headers["Allow"] == "POST"


async def test_a_malformed_multipart_upload_is_a_tether_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    from tests.integration.uploads_support import counts

    response = await client.post(
        "/api/admin/uploads",
        content=b"--xyz\r\nNone--xyz--\r\n",
        headers={**admin_headers, "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == {
        "file": ["The file field must be a file sent as multipart/form-data."]
    }
    assert await counts(db) == (0, 0)


async def test_an_empty_period_is_refused(client: httpx.AsyncClient, make_platform: Any) -> None:
    acme = await make_platform()
    response = await client.get("/v1/reports/stats?period=", headers=bearer(acme.api_key))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "period"


@pytest.mark.parametrize("raw", ["99999999999", "2147483648", "%C2%B2"])
async def test_ids_beyond_the_column_or_not_ascii_are_not_found(
    client: httpx.AsyncClient, admin_headers: dict[str, str], raw: str
) -> None:
    # PostgreSQL refuses an out-of-range INTEGER parameter, and int("²") raises: both were 500s.
    for path in (f"/api/admin/uploads/{raw}", f"/api/admin/debtors/{raw}"):
        response = await client.get(path, headers=admin_headers)
        assert response.status_code == 404, (path, response.text)
    listed = await client.get(f"/api/admin/debtors?upload_id={raw}", headers=admin_headers)
    assert listed.status_code == 422, listed.text
    assert list(listed.json()["errors"]) == ["upload_id"]
    token = await client.get("/api/user", headers={"Authorization": f"Bearer {raw}|secret"})
    assert token.status_code == 401
    node = await client.post(
        "/graphql",
        json={"query": '{ node(id: "VXBsb2FkOjk5OTk5OTk5OTk5") { id } }'},  # Upload:99999999999
        headers=admin_headers,
    )
    assert node.status_code == 200
    assert node.json()["data"] == {"node": None}
    assert node.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_nul_characters_are_refused_before_reaching_the_database(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    created = await client.post(
        "/v1/receivables", json=receivable_payload(user["id"]), headers=bearer(acme.api_key)
    )
    rid = created.json()["id"]
    bad = await client.patch(
        f"/v1/receivables/{rid}",
        json={"metadata": {"note": "a\x00b"}},
        headers=bearer(acme.api_key),
    )
    assert bad.status_code == 400, bad.text
    assert (bad.json()["error"]["code"], bad.json()["error"]["field"]) == (
        "invalid_character",
        "metadata.note",
    )
    after = await client.get(f"/v1/receivables/{rid}", headers=bearer(acme.api_key))
    assert after.json()["metadata"] == {"order": "42"}


async def test_an_integer_beyond_64_bits_in_metadata_reads_back(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    # orjson reads it as a float; PostgreSQL printed it back as a 24-digit integer orjson could
    # not render, so every later read (and the event publication) was a 500.
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    created = await client.post(
        "/v1/receivables", json=receivable_payload(user["id"]), headers=bearer(acme.api_key)
    )
    rid = created.json()["id"]
    patched = await client.patch(
        f"/v1/receivables/{rid}",
        content=b'{"metadata": {"big": 99999999999999999999999}}',
        headers={**bearer(acme.api_key), "Content-Type": "application/json"},
    )
    assert patched.status_code == 200, patched.text
    again = await client.get(f"/v1/receivables/{rid}", headers=bearer(acme.api_key))
    assert again.status_code == 200, again.text
    assert again.json()["metadata"]["big"] == pytest.approx(1e23)


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _routed_operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) of the served document that the server routes."""
    found = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"} and (
                (path, method) not in ANONYMOUS_ONLY
            ):
                params = [*item.get("parameters", []), *operation.get("parameters", [])]
                operation = {**operation, "parameters": [_resolve(doc, p) for p in params]}
                found.append((path, method, operation))
    return found


def _refused_naming(response: httpx.Response, path: str, field: str) -> str | None:
    """Why the response is not the family's client error naming ``field`` (None when it is)."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"
    if path.startswith("/api/"):
        ok = response.status_code == 422 and field in body.get("errors", {})
    else:
        error = body.get("error", {})
        ok = response.status_code == 400 and error.get("field") == field
    return None if ok else f"{response.status_code} {response.text[:200]}"


async def test_nul_in_any_path_or_query_parameter_is_refused_naming_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_platform: Any
) -> None:
    # One check for every routed operation: a new route or parameter is covered by being there.
    key, ids = await _arrange(client, admin_headers, make_platform)
    doc = (await client.get("/openapi.json")).json()
    failures: list[str] = []
    for path, method, operation in _routed_operations(doc):
        headers = admin_headers if path.startswith("/api/") else bearer(key)
        known = next((str(v) for prefix, v in ids.items() if path.startswith(prefix)), "1")
        for param in operation["parameters"]:
            if param["in"] not in ("path", "query"):
                continue
            name = param["name"]
            url = path.replace("{id}", known)
            if param["in"] == "path":
                url = path.replace("{" + name + "}", "a%00b").replace("{id}", known)
            else:
                url = f"{url}?{name}=a%00b"
            response = await client.request(method.upper(), url, headers=headers)
            why = _refused_naming(response, path, name)
            if why is not None:
                failures.append(f"{method.upper()} {url}: {why}")
    assert not failures, "\n".join(failures)


async def test_json_nested_beyond_32_levels_is_invalid_json_for_every_json_body(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_platform: Any
) -> None:
    key, ids = await _arrange(client, admin_headers, make_platform)
    doc = (await client.get("/openapi.json")).json()
    deep = b'{"a": ' * 989 + b"{}" + b"}" * 989
    failures: list[str] = []
    checked = 0
    for path, method, operation in _routed_operations(doc):
        content = _resolve(doc, operation.get("requestBody", {})).get("content", {})
        if "application/json" not in content:
            continue
        headers = admin_headers if path.startswith("/api/") else bearer(key)
        known = next((str(v) for prefix, v in ids.items() if path.startswith(prefix)), "1")
        url = path.replace("{id}", known)
        response = await client.request(
            method.upper(),
            url,
            content=deep,
            headers={**headers, "Content-Type": "application/json"},
        )
        checked += 1
        body = response.json()
        if path.startswith("/api/"):
            ok = response.status_code == 422 and "nested deeper" in str(body.get("errors"))
        else:
            ok = response.status_code == 400 and body["error"]["code"] == "invalid_json"
        if not ok:
            failures.append(f"{method.upper()} {url}: {response.status_code} {response.text[:200]}")
    assert checked >= 5
    assert not failures, "\n".join(failures)


async def test_a_nul_in_a_non_ascii_oauth_parameter_is_a_400_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    # authlib refuses an error_description outside printable ASCII; the name is left out then.
    response = await client.post("/oauth/revoke", data={"\u00e1F": ")\u00c1\x00", "token": "x"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"] == (
        "A parameter must not contain the NUL character."
    )
