"""Bad input that used to end in a 500 or "Unexpected error.": query numbers beyond the database's
range, NUL characters in GraphQL arguments, cursors out of range, malformed GraphQL multipart
requests and documents nested past the parser's reach. Each is refused naming what is wrong."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from debtgraph.domain.debtors.models import Upload
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, count
from tests.integration.uploads_support import csv_text

HUGE = "99999999999999999999"  # beyond BIGINT


@pytest.mark.parametrize(
    ("path", "field", "message"),
    [
        ("/api/admin/uploads?page=" + HUGE, "page", "The page field must not be greater than "),
        ("/api/admin/debtors?page=9223372036854775808", "page", "must not be greater than"),
        ("/api/admin/debtors?page=2147483648", "page", "must not be greater than 2147483647"),
        ("/api/admin/uploads?page=abc", "page", "The page field must be an integer."),
        ("/api/admin/uploads?page=1_0", "page", "The page field must be an integer."),
        ("/api/admin/uploads?page=0", "page", "The page field must be at least 1."),
        ("/api/admin/uploads?page=-" + HUGE, "page", "The page field must be at least 1."),
        ("/api/admin/uploads?per_page=abc", "per_page", "The per page field must be an integer."),
        ("/api/admin/uploads?per_page=" + HUGE, "per_page", "must be between 1 and 100."),
        ("/api/admin/uploads/1/debtors?per_page=x", "per_page", "must be an integer."),
        ("/api/admin/debtors?upload_id=" + HUGE, "upload_id", "must not be greater than"),
        ("/api/admin/debtors?upload_id=2147483648", "upload_id", "must not be greater than"),
    ],
)
async def test_query_numbers_out_of_range_are_a_422_naming_the_parameter(
    client: httpx.AsyncClient, admin_headers: dict[str, str], path: str, field: str, message: str
) -> None:
    errors = await _refused(client, admin_headers, path)
    assert list(errors) == [field]
    assert message in errors[field][0]


async def _refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], path: str
) -> dict[str, list[str]]:
    """The 422 errors of GET ``path`` (upload 1 made first when the path names it)."""
    if "/uploads/1/" in path:
        from tests.integration.uploads_support import csv_text, upload

        await upload(client, admin_headers, csv_text(1))
    response = await client.get(path, headers=admin_headers)
    assert response.status_code == 422, response.text
    return response.json()["errors"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("path", "field", "message"),
    [
        (
            "/api/admin/debtors?risk_class=bogus",
            "risk_class",
            "The selected risk class is invalid.",
        ),
        (
            "/api/admin/uploads/1/debtors?validation_status=bogus",
            "validation_status",
            "The selected validation status is invalid.",
        ),
        ("/api/admin/uploads?status=bogus", "status", "The selected status is invalid."),
        (
            "/api/admin/debtors?upload_id=1.5",
            "upload_id",
            "The upload id field must be an integer.",
        ),
        (
            "/api/admin/debtors?upload_id=--1",
            "upload_id",
            "The upload id field must be an integer.",
        ),
    ],
)
async def test_filter_messages_name_the_field_as_laravel_words_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str], path: str, field: str, message: str
) -> None:
    assert await _refused(client, admin_headers, path) == {field: [message]}


@pytest.mark.parametrize("value", ["-1", "-99999999999999999999", "0", "+0"])
async def test_an_upload_id_that_names_no_row_is_an_empty_list(
    client: httpx.AsyncClient, admin_headers: dict[str, str], value: str
) -> None:
    from tests.integration.uploads_support import csv_text, upload

    await upload(client, admin_headers, csv_text(2))
    response = await client.get(f"/api/admin/debtors?upload_id={value}", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []
    assert response.json()["meta"]["total"] == 0


async def test_the_largest_page_is_an_empty_page(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get("/api/admin/debtors?page=2147483647", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        ("abc", "invalid", "limit must be an integer."),
        ("", "invalid", "limit must be an integer."),
        (HUGE, "out_of_range", "limit must be between 1 and 100."),
        ("0", "out_of_range", "limit must be between 1 and 100."),
    ],
)
async def test_a_cleavr_limit_that_is_not_an_integer_says_so(
    client: httpx.AsyncClient, make_platform: Any, raw: str, code: str, message: str
) -> None:
    platform = await make_platform()
    response = await client.get(f"/v1/receivables?limit={raw}", headers=bearer(platform.api_key))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["field"], error["code"], error["message"]) == ("limit", code, message)


def cursor(value: str) -> str:
    return base64.urlsafe_b64encode(f"c:{value}".encode()).decode()


@pytest.mark.parametrize("value", [HUGE, "2147483648", "-1", "1e3"])
async def test_a_cursor_beyond_the_id_range_is_bad_user_input(
    client: httpx.AsyncClient, admin_headers: dict[str, str], value: str
) -> None:
    query = "query($a: String) { uploads(after: $a) { totalCount } }"
    body = await gql(client, query, {"a": cursor(value)}, headers=admin_headers)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert error["extensions"]["errors"][0]["field"] == "after"
    assert error["message"] == "The cursor is invalid."


def gid(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


RECEIVABLE_NUL = gid("Receivable:rcv_\x00")


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        ("query($i: ID!) { node(id: $i) { id } }", {"i": gid("User:usr_\x00")}, "id"),
        ("query($i: [ID!]!) { nodes(ids: $i) { id } }", {"i": [gid("Receivable:\x00")]}, "ids"),
        ('{ node(id: "' + RECEIVABLE_NUL + '") { id } }', {}, "id"),
        (
            "query($u: ID) { receivables(userId: $u) { totalCount } }",
            {"u": gid("User:usr_\x00")},
            "userId",
        ),
    ],
)
async def test_nul_characters_inside_global_ids_are_refused(
    client: httpx.AsyncClient,
    make_platform: Any,
    query: str,
    variables: dict[str, Any],
    field: str,
) -> None:
    # The public id inside a global id reached PostgreSQL, which refuses NUL: a 500.
    platform = await make_platform()
    body = await gql(client, query, variables, headers=bearer(platform.api_key))
    assert body["data"] is None, body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["errors"][0]["field"] == field


async def test_a_string_that_decodes_to_nul_is_only_refused_as_an_id(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = await gql(client, '{ debtors(search: "AAAA") { totalCount } }', headers=admin_headers)
    assert body == {"data": {"debtors": {"totalCount": 0}}}


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        ('{ debtors(search: "a\\u0000b") { totalCount } }', {}, "search"),
        ("query($s: String) { debtors(search: $s) { totalCount } }", {"s": "a\x00b"}, "search"),
        (
            "mutation($i: BlacklistAddInput!) { blacklistAdd(input: $i) { userErrors { code } } }",
            {"i": {"iban": "DE89370400440532013000", "reason": "x\x00"}},
            "input.reason",
        ),
        (
            'mutation { blacklistAdd(input: {iban: "DE8937\\u00000440532013000"}) '
            "{ userErrors { code } } }",
            {},
            "input.iban",
        ),
        ('query($s: String = "\\u0000") { debtors(search: $s) { totalCount } }', {}, "search"),
    ],
)
async def test_nul_characters_in_graphql_arguments_are_refused_naming_the_argument(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    query: str,
    variables: dict[str, Any],
    field: str,
    sql_counter: Any,
) -> None:
    # PostgreSQL refuses NUL in text: these were 500s ("Unexpected error.") there.
    with sql_counter:
        body = await gql(client, query, variables, headers=admin_headers)
    assert body["data"] is None, body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["field"] == field
    assert field in error["message"]
    # Refused before anything ran: only the token lookup touched the database.
    assert not any(
        "blacklist" in s.lower() or "debtor" in s.lower() for s in sql_counter.statements
    )


UPLOAD = "mutation($f: File!) { uploadCreate(input: {file: $f}) { upload { id } } }"


@pytest.mark.parametrize(
    ("operations", "files_map"),
    [
        ("[]", "{}"),
        ('"x"', "{}"),
        ("1", "{}"),
        (json.dumps({"query": UPLOAD, "variables": {"f": None}}), "[1]"),
        (json.dumps({"query": UPLOAD, "variables": {"f": None}}), '{"0": "variables.f"}'),
        (json.dumps({"query": UPLOAD, "variables": {"f": None}}), '{"0": ["variables.f.x.y"]}'),
        (json.dumps({"query": UPLOAD, "variables": {"f": []}}), '{"0": ["variables.f.5"]}'),
        (json.dumps({"query": UPLOAD, "variables": {"f": None}}), '{"0": ["query"]}'),
        (json.dumps({"query": UPLOAD, "variables": {"f": None}}), '{"0": ["nope.f"]}'),
        (json.dumps({"query": UPLOAD, "variables": {"f": None}}), '{"9": ["variables.f"]}'),
        (json.dumps({"query": UPLOAD, "variables": "x"}), '{"0": ["variables.f"]}'),
        ("{", "{}"),
    ],
)
async def test_a_malformed_graphql_multipart_request_is_a_clean_400(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    operations: str,
    files_map: str,
) -> None:
    response = await client.post(
        "/graphql",
        data={"operations": operations, "map": files_map},
        files={"0": ("a.csv", b"first_name,last_name\nAna,Lopez\n", "text/csv")},
        headers=admin_headers,
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "Unexpected" not in error["message"]
    assert await count(db, Upload) == 0


async def test_a_document_nested_5000_levels_is_a_syntax_error(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for document in (
        "{" + "me { " * 5000 + "id" + " }" * 5001,
        "{ debtors(search: " + "[" * 5000 + "]" * 5000 + ") { totalCount } }",
        # 4,000 levels: 5,000 inline fragments would exceed GRAPHQL_MAX_DOCUMENT_KB (64 KB).
        "{ me { " + "... on User { " * 4000 + "id" + " }" * 4002,
    ):
        assert len(document) < 64 * 1024
        body = await gql(client, document, headers=admin_headers)
        assert body["data"] is None
        error = body["errors"][0]
        assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED", body
        assert error["message"].startswith("Syntax Error")


@pytest.mark.parametrize("variables", [{"n": 1.5}, {"n": "ten"}, {}])
async def test_variables_that_do_not_coerce_are_bad_user_input(
    client: httpx.AsyncClient, admin_headers: dict[str, str], variables: dict[str, Any]
) -> None:
    query = "query($n: Int!) { uploads(first: $n) { totalCount } }"
    body = await gql(client, query, variables, headers=admin_headers)
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert "$n" in error["message"]


async def test_one_file_variable_feeds_two_upload_fields(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    # Outside review: the first field read the file to its end, and the second was refused
    # with "The file is empty.".
    twice = (
        "mutation($f: File!) { a: uploadCreate(input: {file: $f}) { upload { id totalRecords } }"
        " b: uploadCreate(input: {file: $f}) { upload { id totalRecords } } }"
    )
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": twice, "variables": {"f": None}}),
            "map": '{"0": ["variables.f"]}',
        },
        files={"0": ("a.csv", csv_text(2).encode(), "text/csv")},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    first, second = body["data"]["a"]["upload"], body["data"]["b"]["upload"]
    assert first["id"] != second["id"]
    assert first["totalRecords"] == second["totalRecords"] == 2
    assert await count(db, Upload) == 2
