"""Schema assembly. An area adds its root types to the lists below and nothing else changes."""

from __future__ import annotations

import strawberry
from graphql.error import GraphQLError
from strawberry import relay
from strawberry.extensions import MaxTokensLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types.execution import ExecutionContext

from debtgraph.schema.base import DebtgraphMaskErrors, log_graphql_errors
from debtgraph.schema.blacklist import BlacklistMutation, BlacklistQuery
from debtgraph.schema.creditors import CreditorMutation, UserMutation, UserQuery
from debtgraph.schema.dashboard import DashboardQuery, DashboardSubscription
from debtgraph.schema.debtors import DebtorMutation, DebtorQuery, DebtorSubscription
from debtgraph.schema.events import EventSubscription
from debtgraph.schema.extraction import ExtractionMutation
from debtgraph.schema.limits import GraphQLLimits
from debtgraph.schema.receivables import ReceivableMutation, ReceivableQuery, ReceivableSubscription
from debtgraph.schema.reports import ReportQuery
from debtgraph.schema.uploads import (
    FILE_SCALAR,
    FileUpload,
    UploadMutation,
    UploadQuery,
    UploadSubscription,
)


@strawberry.type
class NodeQuery:
    node: relay.Node | None = relay.node(description="Fetch any object by its global id.")
    nodes: list[relay.Node | None] = relay.node(description="Fetch objects by their global ids.")


QUERIES: list[type] = [
    NodeQuery,
    UserQuery,
    ReceivableQuery,
    ReportQuery,
    UploadQuery,
    DebtorQuery,
    DashboardQuery,
    BlacklistQuery,
]
MUTATIONS: list[type] = [
    UserMutation,
    CreditorMutation,
    ReceivableMutation,
    UploadMutation,
    DebtorMutation,
    BlacklistMutation,
    ExtractionMutation,
]
SUBSCRIPTIONS: list[type] = [
    EventSubscription,
    ReceivableSubscription,
    UploadSubscription,
    DebtorSubscription,
    DashboardSubscription,
]

# Bounds the parser's work; depth, aliases, cost and nodes ids are limits.GraphQLLimits'.
MAX_TOKENS = 5000


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
    return DebtgraphSchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        config=StrawberryConfig(scalar_map={FileUpload: FILE_SCALAR}),
        extensions=[
            DebtgraphMaskErrors,
            GraphQLLimits,
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        ],
    )
