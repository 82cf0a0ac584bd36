"""The document cache (schema/caches.py): bounded by the bytes of its texts, refused documents
never kept, and a kept document's validation and plans kept and dropped with it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from graphql import parse

from debtgraph.schema import limits
from debtgraph.schema.caches import DOCUMENTS, MAX_CACHED_BYTES, MAX_TEXT_BYTES, DocumentCache
from debtgraph.schema.compiled import FIELD_PLAN_WEIGHT
from debtgraph.schema.limits import MAX_TOKENS, PART_WEIGHT, VERDICT_WEIGHT
from tests.conftest import gql

OPTIONS = (("max_tokens", MAX_TOKENS),)
# The limits' verdict on a document of one operation and no variables.
ONE_VERDICT = VERDICT_WEIGHT + PART_WEIGHT


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    DOCUMENTS.clear()
    yield
    DOCUMENTS.clear()


def typenames(count: int) -> str:
    """``count`` merged ``__typename``: valid up to some hundreds, then validation gives up."""
    return "{" + " __typename" * count + "}"


def padded(size: int, pad: int) -> str:
    """A valid anonymous query of about ``size`` characters, made distinct by ``pad``."""
    return "# " + "x" * (size - pad) + " " * pad + "\n{ __typename }"


async def test_large_distinct_documents_stay_within_the_byte_budget(
    client: httpx.AsyncClient,
) -> None:
    # ~15 KB each (under the per-text cap), 100 of them: 1.5 MB of text, whitespace variants
    # of one another, each one valid, asked anonymously.
    texts = [padded(15_200, pad) for pad in range(100)]
    assert MAX_TEXT_BYTES > len(texts[-1]) > 15_000
    for text in texts:
        body = await gql(client, text)
        assert body == {"data": {"__typename": "Query"}}, body
        assert DOCUMENTS.bytes <= MAX_CACHED_BYTES
    # Each text is charged with its plan (one field: ``__typename``) and its limits' verdict.
    kept = [t for t in texts if t in DOCUMENTS]
    assert DOCUMENTS.bytes == sum(len(t) + FIELD_PLAN_WEIGHT + ONE_VERDICT for t in kept)
    assert 0 < len(DOCUMENTS) <= MAX_CACHED_BYTES // 15_000
    assert texts[-1] in DOCUMENTS
    assert texts[0] not in DOCUMENTS


async def test_a_text_over_the_cap_answers_but_is_not_kept(client: httpx.AsyncClient) -> None:
    text = padded(MAX_TEXT_BYTES + 100, 0)
    assert len(text) > MAX_TEXT_BYTES
    for _ in range(2):
        assert await gql(client, text) == {"data": {"__typename": "Query"}}
    assert text not in DOCUMENTS
    assert DOCUMENTS.bytes == 0


@pytest.mark.parametrize(
    "text",
    [
        "{ __typename",  # syntax
        "{ nope }",  # validation
        typenames(MAX_TOKENS + 10),  # tokens
        typenames(MAX_TOKENS - 10),  # validation gives up (~3.4 MB of nodes once parsed)
        padded(60_000, 0) + " { __typename }",  # an anonymous operation among others
        "{ " + " ".join(f"a{i}: __typename" for i in range(101)) + " }",  # aliases
        "{ debtors(first: 1) { nodes { id } } } { __typename }",  # two anonymous operations
    ],
)
async def test_refused_documents_are_never_kept(client: httpx.AsyncClient, text: str) -> None:
    for _ in range(2):
        body = await gql(client, text)
        assert body.get("errors"), body
        assert text not in DOCUMENTS
    assert len(DOCUMENTS) == 0
    assert DOCUMENTS.bytes == 0


async def test_a_kept_document_is_parsed_validated_and_compiled_once(
    client: httpx.AsyncClient,
) -> None:
    text = "query Q { __typename }"
    assert await gql(client, text) == {"data": {"__typename": "Query"}}
    document = DOCUMENTS.document(text, OPTIONS)
    assert document is not None
    plans = DOCUMENTS.plans(text, document.definitions[0])
    assert plans is not None
    assert next(iter(plans.values())) is not None
    assert await gql(client, text) == {"data": {"__typename": "Query"}}
    assert DOCUMENTS.document(text, OPTIONS) is document
    assert DOCUMENTS.plans(text, document.definitions[0]) is plans


def test_eviction_drops_the_document_with_its_validation_and_plans() -> None:
    cache = DocumentCache(max_bytes=30, max_text=20)
    key = (1, ())
    first, second, third = "{ a }", "{ bb }" + " " * 8, "{ ccc }" + " " * 8
    for text in (first, second):
        cache.remember(text, OPTIONS, parse(text), key)
    first_document = cache.document(first, OPTIONS)  # now the most recently used
    assert first_document is not None
    assert cache.validated(first, first_document, key)
    assert not cache.validated(first, parse(first), key)  # only that very object
    assert cache.document(first, ()) is None  # other parse options: another document
    cache.remember(third, OPTIONS, parse(third), key)
    assert second not in cache
    assert first in cache
    assert third in cache
    assert cache.bytes == len(first) + len(third) <= 30
    cache.remember("{ " + "d" * 30 + " }", OPTIONS, parse("{ d }"), key)  # over max_text
    assert len(cache) == 2
    assert cache.plans(second, parse(second).definitions[0]) is None


async def test_a_documents_compiled_plan_is_charged_to_the_budget(
    client: httpx.AsyncClient,
) -> None:
    # Aliases weigh little as text but each is a field plan: the entry pays for its plan.
    text = "{" + " ".join(f"a{n}: __typename" for n in range(90)) + "}"
    assert await gql(client, text) == {"data": {f"a{n}": "Query" for n in range(90)}}
    assert text in DOCUMENTS
    assert DOCUMENTS.bytes == len(text) + 90 * FIELD_PLAN_WEIGHT + ONE_VERDICT


async def test_eviction_drops_the_limits_verdict_with_the_document(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    walks = []
    real = limits.judge
    monkeypatch.setattr(limits, "judge", lambda *args: walks.append(args) or real(*args))
    text, other = "query Kept { __typename }", "query Other { __typename }" + " " * 100
    for _ in range(3):
        assert await gql(client, text) == {"data": {"__typename": "Query"}}
    assert len(walks) == 1
    document = DOCUMENTS.document(text, OPTIONS)
    assert document is not None
    assert len(DOCUMENTS.verdicts(text, document) or {}) == 1
    assert DOCUMENTS.verdicts(text, parse(text)) is None  # only that very document's
    # Room for one of the two: keeping the other evicts the first, its verdict with it.
    monkeypatch.setattr(DOCUMENTS, "max_bytes", len(other) + 50)
    assert await gql(client, other) == {"data": {"__typename": "Query"}}
    assert text not in DOCUMENTS
    assert len(walks) == 2
    assert await gql(client, text) == {"data": {"__typename": "Query"}}
    assert len(walks) == 3  # walked afresh


async def test_the_verdicts_of_one_document_are_bounded(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, admin_headers: dict[str, str]
) -> None:
    walks = []
    real = limits.judge
    monkeypatch.setattr(limits, "judge", lambda *args: walks.append(args) or real(*args))
    text = "query Paged($n: Int) { receivables(first: $n) { totalCount } }"
    weight = VERDICT_WEIGHT + 2 * PART_WEIGHT  # one operation, one variable
    for n in range(1, limits.MAX_VERDICTS + 6):
        assert "errors" not in await gql(client, text, {"n": n}, admin_headers)
        if n == 1:
            first = DOCUMENTS.bytes  # the text, its plan and one verdict
    document = DOCUMENTS.document(text, OPTIONS)
    assert document is not None
    kept = DOCUMENTS.verdicts(text, document) or {}
    assert sum(len(by_reading) for by_reading in kept.values()) == limits.MAX_VERDICTS
    assert DOCUMENTS.bytes == first + (limits.MAX_VERDICTS - 1) * weight
    # The first ones are kept; the others are walked each time, as a document not kept.
    assert "errors" not in await gql(client, text, {"n": 1}, admin_headers)
    assert "errors" not in await gql(client, text, {"n": limits.MAX_VERDICTS + 2}, admin_headers)
    assert len(walks) == limits.MAX_VERDICTS + 5 + 1


def test_a_charge_past_the_budget_evicts_the_oldest_entries() -> None:
    cache = DocumentCache(max_bytes=100, max_text=50)
    first, second = "{ a }", "{ b }"
    for text in (first, second):
        cache.remember(text, (), parse(text), (0, ()))
    cache.charge(second, 95)
    assert first not in cache
    assert second in cache
    assert cache.bytes == len(second) + 95
    cache.charge("{ never kept }", 1000)  # nothing to charge: no entry
    assert cache.bytes == len(second) + 95
