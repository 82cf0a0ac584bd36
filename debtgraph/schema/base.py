"""Shared GraphQL plumbing: the context accessor, user errors, error masking and cursors."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import strawberry
from graphql.error import GraphQLError
from strawberry import relay
from strawberry.extensions import MaskErrors
from strawberry.types import Info
from strawberry.types.base import StrawberryObjectDefinition

from debtgraph.domain.core.database import UNAVAILABLE_MESSAGE, is_unavailable
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import (
    DomainValidationError,
    ExpectedError,
    NotFound,
    Unauthenticated,
)
from debtgraph.resolvers.json_limits import MAX_JSON_DEPTH, json_depth_exceeds
from debtgraph.resolvers.loaders import Page
from debtgraph.resolvers.pagination import db_id, encode_cursor
from debtgraph.schema.limits import limits_of

log = logging.getLogger("debtgraph.graphql")
T = TypeVar("T")
R = TypeVar("R")


def ctx_of(info: Info[Context, Any]) -> Context:
    """The transport-free context behind Strawberry's Info."""
    return info.context


@strawberry.type(description="An expected failure of a mutation: the field at fault and why.")
class UserError:
    field: str | None
    code: str
    message: str


def user_errors(exc: Exception) -> list[UserError]:
    """The userErrors for an expected failure; unexpected ones are re-raised by the caller."""
    if isinstance(exc, DomainValidationError):
        return [
            UserError(field=e.field or None, code=e.code, message=e.message) for e in exc.errors
        ]
    if isinstance(exc, ExpectedError):
        return [UserError(field=None, code=exc.code, message=exc.message)]
    raise exc


# The client's mistakes: the graph's own refusals, and graphql-core's and Strawberry's (syntax,
# validation, variable coercion, a malformed global id). Not incidents: no trace, INFO. Exactly
# the errors DebtgraphMaskErrors shows as they are; the rest are masked and logged at ERROR.
CLIENT_ERRORS = (ExpectedError, GraphQLError)


def log_graphql_errors(errors: Iterable[GraphQLError]) -> None:
    """Client errors at INFO without a trace; anything else at ERROR with its one trace."""
    for error in errors:
        original = error.original_error
        if original is None or isinstance(original, CLIENT_ERRORS):
            code = (error.extensions or {}).get("code") or type(original or error).__name__
            log.info("GraphQL client error (%s): %s", code, error.message)
        elif is_unavailable(original):
            # Load, not a bug: the one line says so without a trace per refused request.
            log.warning("database unavailable in GraphQL: %s", original)
        else:
            log.error(
                "unexpected error in GraphQL at %s",
                ".".join(map(str, error.path or [])) or "(operation)",
                exc_info=original,
            )


async def attempt(call: Awaitable[R]) -> tuple[R | None, list[UserError]]:
    """Run a use case; expected failures become userErrors, anything else propagates."""
    try:
        return await call, []
    except Unauthenticated:
        # Not a user error: the client must sign in; surfaces as a top-level UNAUTHENTICATED.
        raise
    except ExpectedError as exc:
        return None, user_errors(exc)


_CODES = {
    "unauthenticated": "UNAUTHENTICATED",
    "not_found": "NOT_FOUND",
    "insufficient_scope": "FORBIDDEN",
}


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


class DebtgraphMaskErrors(MaskErrors):
    """Hide unexpected exceptions; give expected ones a machine-readable ``extensions.code``."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=self._should_mask, error_message="Unexpected error.")

    @staticmethod
    def _should_mask(error: GraphQLError) -> bool:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            return False
        # Logged (once, with its trace) by log_graphql_errors, which sees every error first.
        return not isinstance(original, ExpectedError) and not is_unavailable(original)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        # graphql-core's "Did you mean …?" names fields, arguments and enum values: the schema
        # itself, to a caller refused introspection (anonymous, in production).
        hide_schema = not limits_of(self.execution_context.context).allow_introspection
        for error in processed:
            if hide_schema and "Did you mean" in error.message:
                error.message = _SUGGESTION.sub("", error.message)
            original = error.original_error
            if isinstance(original, DomainValidationError):
                error.extensions = {
                    **(error.extensions or {}),
                    "code": "BAD_USER_INPUT",
                    "errors": [e.as_dict() for e in original.errors],
                }
            elif isinstance(original, ExpectedError):
                # invalid_transition becomes INVALID_TRANSITION, like every other code.
                code = _CODES.get(original.code, original.code.upper())
                error.extensions = {**(error.extensions or {}), "code": code}
            elif original is not None and is_unavailable(original):
                # Shown, not masked: the caller should retry, and the driver's text stays here.
                error.message = UNAVAILABLE_MESSAGE
                error.extensions = {
                    **(error.extensions or {}),
                    "code": "SERVICE_UNAVAILABLE",
                    "retryAfter": 1,
                }
        return processed


async def nodes_in_order(
    node_ids: Iterable[str],
    fetch: Callable[[list[Any]], Awaitable[Mapping[Any, Any]]],
    convert: Callable[[Any], T],
    *,
    numeric: bool = False,
) -> list[T | None]:
    """``resolve_nodes`` for any node type: fetch the visible rows once, answer in request order.

    ``fetch`` applies the caller's reach; ids it does not return (absent, out of reach, or not
    numeric for numeric ids) resolve to null.
    """
    ids = list(node_ids)
    keys: list[Any] = [k for k in map(db_id, ids) if k is not None] if numeric else ids
    found = await fetch(keys)
    result: list[T | None] = []
    for raw in ids:
        key: Any = db_id(raw) if numeric else raw
        result.append(convert(found[key]) if key in found else None)
    return result


def _json_within_depth(value: Any) -> Any:
    """A JSON argument as sent, refused past the depth REST refuses (invalid_json)."""
    if json_depth_exceeds(value, MAX_JSON_DEPTH):
        message = f"A JSON value must not nest deeper than {MAX_JSON_DEPTH} levels."
        raise GraphQLError(
            message,
            extensions={
                "code": "BAD_USER_INPUT",
                "errors": [{"field": "", "code": "invalid_json", "message": message}],
            },
        )
    return value


# Strawberry's JSON scalar (same name and description), with the depth check of PRODUCT.md §12
# on variables and literals alike (graphql-core parses a literal through parse_value).
JSON_SCALAR = strawberry.scalar(
    name="JSON",
    description=(
        "The `JSON` scalar type represents JSON values as specified by "
        "[ECMA-404]"
        "(https://ecma-international.org/wp-content/uploads/ECMA-404_2nd_edition_december_2017.pdf)."
    ),
    specified_by_url=(
        "https://ecma-international.org/wp-content/uploads/ECMA-404_2nd_edition_december_2017.pdf"
    ),
    serialize=lambda value: value,
    parse_value=_json_within_depth,
)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A newest-first page of nodes (at most 100 per page).")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo
    total_count: int


def to_connection(
    page: Page[Any], convert: Callable[[Any], T], has_previous: bool = False
) -> Connection[T]:
    """Shape a resolver page into a Relay connection."""
    nodes = [convert(item) for item in page.items]
    edges = [
        Edge(cursor=encode_cursor(item.id), node=node)
        for item, node in zip(page.items, nodes, strict=True)
    ]
    return Connection(
        edges=edges,
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=page.total,
    )


def node_key(global_id: relay.GlobalID | None, type_name: str) -> int | None:
    """The numeric id behind a global id of the given type (NotFound for any other)."""
    if global_id is None:
        return None
    key = db_id(global_id.node_id)
    if global_id.type_name != type_name or key is None:
        raise NotFound(type_name)
    return key


def schema_type(info: Info, name: str) -> Any:
    """The class of the object type ``name`` in the running schema.

    Two node types that link to each other (Receivable.user and User.receivables, Debtor.upload
    and Upload.debtors) cannot both import the other's module without an import cycle: the
    importing side names the other type with ``strawberry.lazy`` in its annotation and takes the
    class from the schema here to build it.
    """
    definition = info.schema.get_type_by_name(name)
    if not isinstance(definition, StrawberryObjectDefinition):
        raise LookupError(f"{name} is not an object type of the schema")
    return definition.origin
