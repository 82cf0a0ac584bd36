"""The assembled GraphQL schema: each area contributes its Query/Mutation/Subscription parts."""

from debtgraph.schema.build import build_schema

schema = build_schema()

__all__ = ["build_schema", "schema"]
