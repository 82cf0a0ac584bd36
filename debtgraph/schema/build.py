"""Schema assembly. An area adds its root types to the lists below and nothing else changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable
from decimal import Decimal
from typing import Annotated, cast

import strawberry
from graphql.error import GraphQLError
from strawberry import relay
from strawberry.extensions import MaxTokensLimiter
from strawberry.relay.types import GlobalIDValueError
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import Info
from strawberry.types.execution import ExecutionContext

from debtgraph.resolvers.errors import ExpectedError, NotFound, Unauthenticated
from debtgraph.resolvers.permissions import require_node_access
from debtgraph.schema.base import (
    DECIMAL_SCALAR,
    JSON_SCALAR,
    DebtgraphMaskErrors,
    ctx_of,
    global_id_of,
    log_graphql_errors,
    register_input_names,
)
from debtgraph.schema.billing import BillingMutation, BillingQuery
from debtgraph.schema.blacklist import BlacklistMutation, BlacklistQuery
from debtgraph.schema.caches import CleanValidationCache, ParsedDocuments
from debtgraph.schema.compiled import CompiledExecutor
from debtgraph.schema.creditors import (
    ConnectionMutation,
    CreditorMutation,
    UserMutation,
    UserQuery,
    UserSubscription,
)
from debtgraph.schema.dashboard import DashboardQuery, DashboardSubscription
from debtgraph.schema.debtors import DebtorMutation, DebtorQuery, DebtorSubscription
from debtgraph.schema.events import EventSubscription
from debtgraph.schema.extraction import ExtractionMutation
from debtgraph.schema.limits import MAX_TOKENS, GraphQLLimits
from debtgraph.schema.receivables import ReceivableMutation, ReceivableQuery, ReceivableSubscription
from debtgraph.schema.reports import ReportQuery
from debtgraph.schema.uploads import (
    FILE_SCALAR,
    FileUpload,
    UploadMutation,
    UploadQuery,
    UploadSubscription,
)
from debtgraph.schema.vop_logs import VopLogQuery
from debtgraph.schema.webhooks import WebhookMutation, WebhookQuery


def _node_type(info: Info, global_id: relay.GlobalID) -> type[relay.Node] | None:
    """The Node type a global id names, or None when it names no Node type of the schema."""
    try:
        return global_id.resolve_type(info)
    except GlobalIDValueError:
        return None


async def _fetch_nodes(
    info: Info, given: list[str] | list[relay.GlobalID]
) -> list[relay.Node | ExpectedError]:
    """The nodes behind ``ids`` in request order, one fetch per type, within the caller's reach.

    An id that is unknown, out of reach, names no Node type (``Foo:1``, ``PageInfo:1``) or is no
    global id at all (``garbage``: taken as an ``ID``, so one bad id of many fails its own
    element only, not the whole list) answers the same NotFound, so a caller learns nothing
    about what exists (PRODUCT.md §1). A caller who may not read that type at all (anonymous, a
    token without the scope, a platform on an operator type) gets the refusal REST's ``GET``
    gives (``require_node_access``).
    graphql-core turns an exception in the list into null plus an error at that element's path.
    """
    ctx = ctx_of(info)
    if ctx.principal is None:
        # Anonymous, every id is refused as REST's GET refuses it, whatever the id says: a
        # garbage id answered "Node not found." beside the others' "Unauthenticated.".
        return [Unauthenticated() for _ in given]
    ids = [global_id_of(value) for value in given]
    by_type: dict[type[relay.Node], list[str]] = defaultdict(list)
    refused: dict[str, ExpectedError] = {}
    for global_id in ids:
        if global_id is None:
            continue
        node_type = _node_type(info, global_id)
        if node_type is None:
            continue
        try:
            require_node_access(ctx, global_id.type_name)
        except ExpectedError as exc:
            refused[global_id.type_name] = exc
            continue
        by_type[node_type].append(global_id.node_id)
    found: dict[tuple[type[relay.Node], str], relay.Node] = {}
    for node_type, node_ids in by_type.items():
        # Every node type of the graph resolves its nodes asynchronously (nodes_in_order).
        resolved = await cast(
            "Awaitable[list[relay.Node | None]]",
            node_type.resolve_nodes(info=info, node_ids=node_ids, required=False),
        )
        for node_id, node in zip(node_ids, resolved, strict=True):
            if node is not None:
                found[(node_type, node_id)] = node
    result: list[relay.Node | ExpectedError] = []
    for global_id in ids:
        if global_id is None:
            result.append(NotFound("Node"))
            continue
        if global_id.type_name in refused:
            result.append(refused[global_id.type_name])
            continue
        node = found.get((_node_type(info, global_id), global_id.node_id))  # type: ignore[arg-type]
        result.append(node if node is not None else NotFound("Node"))
    return result


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Fetch any object by its global id.")
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The ID of the object.")],
    ) -> relay.Node | None:
        (node,) = await _fetch_nodes(info, [id])
        if isinstance(node, ExpectedError):
            raise node
        return node

    @strawberry.field(description="Fetch objects by their global ids.")
    async def nodes(
        self,
        info: Info,
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="The IDs of the objects.")
        ],
    ) -> list[relay.Node | None]:
        # The refusals become per-element errors (see _fetch_nodes).
        return await _fetch_nodes(info, ids)  # type: ignore[return-value]


QUERIES: list[type] = [
    NodeQuery,
    UserQuery,
    ReceivableQuery,
    ReportQuery,
    UploadQuery,
    DebtorQuery,
    DashboardQuery,
    BlacklistQuery,
    BillingQuery,
    WebhookQuery,
    VopLogQuery,
]
MUTATIONS: list[type] = [
    UserMutation,
    CreditorMutation,
    ConnectionMutation,
    ReceivableMutation,
    UploadMutation,
    DebtorMutation,
    BlacklistMutation,
    ExtractionMutation,
    BillingMutation,
    WebhookMutation,
]
SUBSCRIPTIONS: list[type] = [
    EventSubscription,
    ReceivableSubscription,
    UserSubscription,
    UploadSubscription,
    DebtorSubscription,
    DashboardSubscription,
]


class DebtgraphSchema(strawberry.Schema):
    """Logs client errors (401, 404, bad input, bad ids) at INFO and only the rest as incidents."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_graphql_errors(errors)


def build_schema() -> strawberry.Schema:
    """The schema with error masking, and the limits of PRODUCT.md §12 checked before execution."""
    query = merge_types("Query", tuple(QUERIES))
    mutation = merge_types("Mutation", tuple(MUTATIONS))
    subscription = merge_types("Subscription", tuple(SUBSCRIPTIONS))
    schema = DebtgraphSchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        config=StrawberryConfig(
            scalar_map={FileUpload: FILE_SCALAR, JSON: JSON_SCALAR, Decimal: DECIMAL_SCALAR}
        ),
        execution_context_class=CompiledExecutor,
        extensions=[
            DebtgraphMaskErrors,
            GraphQLLimits,
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            ParsedDocuments,
            CleanValidationCache,
        ],
    )
    register_input_names(schema)
    return schema
