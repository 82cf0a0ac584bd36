"""Which document a GraphQL request runs: its own text, or the one its persisted-query hash names.

Automatic persisted queries follow Apollo's protocol: ``extensions.persistedQuery`` is
``{"version": 1, "sha256Hash": <hex SHA-256 of the document>}``, over POST, GET and WebSocket. A
hash alone runs the stored document, or answers ``PERSISTED_QUERY_NOT_FOUND`` so the client sends
the document with its hash, which stores it. Only a document that parses, validates and keeps to
the caller's limits is stored (anyone may register, so the store must not hold junk), in a
bounded store (``domain/core/hashstore``). In enforced mode (``GRAPHQL_PERSISTED_QUERIES=
enforced``) nothing is stored: only the documents of the manifest run, by hash or by text.

Every document is also held to ``GRAPHQL_MAX_DOCUMENT_KB`` here, before anything parses it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import GraphQLError, GraphQLSchema, parse, validate

from debtgraph.domain.core.hashstore import HashStore
from debtgraph.schema.limits import MAX_TOKENS, TOO_COMPLEX, check_document, limits_of
from debtgraph.settings import ConfigError, Settings

# Services.ports: the HashStore of automatic persisted queries, wired by the server.
DOCUMENTS_PORT = "graphql_documents"
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
NOT_IN_SAFELIST = "QUERY_NOT_IN_SAFELIST"
_HASH = re.compile(r"[0-9a-f]{64}")
APOLLO_MANIFEST_FORMAT = "apollo-persisted-query-manifest"


class DocumentRefused(Exception):
    """A request refused before its document is parsed: one GraphQL error and an HTTP status."""

    def __init__(self, message: str, code: str, *, status: int = 200, **extensions: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {
            "message": message,
            "extensions": {"code": code, **extensions},
        }


def sha256_hex(document: str) -> str:
    """The hash a client sends for ``document`` (of its UTF-8 text, as Apollo's clients do)."""
    return hashlib.sha256(document.encode()).hexdigest()


# --- the manifest of enforced mode --------------------------------------------------------------


def document_problems(schema: GraphQLSchema, document: str) -> list[str]:
    """Why ``document`` could never run against ``schema`` (empty when it can)."""
    try:
        parsed = parse(document, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        return [exc.message]
    return [error.message for error in validate(schema, parsed)]


def read_manifest(path: Path) -> dict[str, str]:
    """``{hash: document}``, from either JSON form: that mapping itself, or Apollo's
    ``{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}, …]}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"GRAPHQL_PERSISTED_QUERIES_MANIFEST {path}: {exc}") from exc
    if isinstance(data, dict) and data.get("format") == APOLLO_MANIFEST_FORMAT:
        operations = data.get("operations")
        if not isinstance(operations, list) or not all(
            isinstance(o, dict) and isinstance(o.get("id"), str) and isinstance(o.get("body"), str)
            for o in operations
        ):
            raise ConfigError(f"{path}: operations must be a list of {{id, body}} objects.")
        return {o["id"]: o["body"] for o in operations}
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigError(f"{path}: the manifest must be a JSON object of hash to document.")
    return dict(data)


def load_manifest(path: Path, schema: GraphQLSchema) -> dict[str, str]:
    """The manifest, refused (ConfigError, at startup) if a hash is not its document's or a
    document could not run: a mistake there would otherwise show as refusals in production."""
    documents = read_manifest(path)
    problems = []
    for key, document in documents.items():
        if sha256_hex(document) != key:
            problems.append(f"{key[:16]}…: the key is not the SHA-256 of its document")
        problems.extend(f"{key[:16]}…: {p}" for p in document_problems(schema, document))
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems[:10]))
    return documents


def collect_documents(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every ``*.graphql`` file under ``folder`` (sorted), each file one document, as sent."""
    for path in sorted(folder.rglob("*.graphql")):
        yield path, path.read_text(encoding="utf-8")


def build_manifest(folder: Path, schema: GraphQLSchema) -> tuple[dict[str, str], list[str]]:
    """The manifest of a folder, and the problems of the documents that could not run."""
    manifest: dict[str, str] = {}
    problems: list[str] = []
    for path, document in collect_documents(folder):
        found = document_problems(schema, document)
        problems.extend(f"{path}: {p}" for p in found)
        if not found:
            manifest[sha256_hex(document)] = document
    return dict(sorted(manifest.items())), problems


# --- per request ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersistedQueries:
    """The documents policy of one deployment (from Settings)."""

    mode: str  # off | automatic | enforced
    max_document_bytes: int
    store: HashStore | None = None
    manifest: Mapping[str, str] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, schema: GraphQLSchema, store: HashStore | None
    ) -> PersistedQueries:
        """Loads and checks the manifest in enforced mode."""
        manifest = None
        if settings.graphql_persisted_queries == "enforced":
            assert settings.graphql_persisted_queries_manifest  # Settings.check
            manifest = load_manifest(Path(settings.graphql_persisted_queries_manifest), schema)
        return cls(
            mode=settings.graphql_persisted_queries,
            max_document_bytes=settings.max_document_bytes,
            store=store,
            manifest=manifest,
        )

    async def document(
        self,
        query: str | None,
        extensions: Mapping[str, Any] | None,
        variables: Mapping[str, Any] | None,
        ctx: Any,
        schema: GraphQLSchema,
    ) -> str | None:
        """The document to run (None when the request has none), or DocumentRefused."""
        given = _requested_hash(extensions)
        if given is not None and self.mode == "off":
            raise DocumentRefused(
                "PersistedQueryNotSupported", NOT_SUPPORTED, status=400
            )  # Apollo's clients then send documents without hashes
        if query is None:
            if given is None:
                return None
            return await self._stored(given)
        self._check_size(query)
        actual = sha256_hex(query) if given is not None or self.manifest is not None else None
        if given is not None and given != actual:
            raise DocumentRefused(
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query.",
                "BAD_REQUEST",
                status=400,
            )
        if self.manifest is not None:
            if actual not in self.manifest:
                raise DocumentRefused(
                    "Only registered documents run on this server "
                    "(GRAPHQL_PERSISTED_QUERIES=enforced); this one is not in the manifest.",
                    NOT_IN_SAFELIST,
                )
            return query
        if (
            given is not None
            and self.store is not None
            and await self.store.get(given) is None
            and _may_run(schema, query, variables, ctx)
        ):
            await self.store.put(given, query)
        return query

    async def _stored(self, key: str) -> str:
        if self.manifest is not None:
            found = self.manifest.get(key)
            if found is None:
                raise DocumentRefused(
                    "No registered document has this hash (GRAPHQL_PERSISTED_QUERIES=enforced).",
                    NOT_IN_LIST,
                )
            return found
        stored = await self.store.get(key) if self.store is not None else None
        if stored is None:
            # Apollo's message and code: its clients retry with the document on either.
            raise DocumentRefused("PersistedQueryNotFound", NOT_FOUND)
        return stored

    def _check_size(self, query: str) -> None:
        # A character is at least one byte: most documents pass without being encoded.
        if len(query) > self.max_document_bytes or (
            len(query) * 4 > self.max_document_bytes
            and len(query.encode()) > self.max_document_bytes
        ):
            limit_kb = self.max_document_bytes // 1024
            raise DocumentRefused(
                f"The document is larger than {limit_kb} KB (GRAPHQL_MAX_DOCUMENT_KB); "
                "variables are not counted.",
                TOO_COMPLEX,
                limit="GRAPHQL_MAX_DOCUMENT_KB",
                max=limit_kb,
            )


def _requested_hash(extensions: Mapping[str, Any] | None) -> str | None:
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    key = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if (
        not isinstance(persisted, dict)
        or persisted.get("version") != 1
        or not isinstance(key, str)
        or not _HASH.fullmatch(key.lower())
    ):
        raise DocumentRefused(
            'extensions.persistedQuery must be {"version": 1, "sha256Hash": '
            "<the document's SHA-256 in 64 hex digits>}.",
            "BAD_REQUEST",
            status=400,
        )
    return key.lower()


def _may_run(
    schema: GraphQLSchema, query: str, variables: Mapping[str, Any] | None, ctx: Any
) -> bool:
    """Whether the document parses, keeps to the caller's limits and validates (the limits
    first, as at execution: graphql-core's rules recurse along fragment chains)."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return False
    if check_document(schema, document, variables, limits_of(ctx)):
        return False
    return not validate(schema, document)
