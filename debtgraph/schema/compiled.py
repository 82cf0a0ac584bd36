"""Compiled execution of validated query documents.

graphql-core walks every field of every object through the same general machinery: it
collects the selection again, builds a resolve info, checks for arguments, calls Strawberry's
wrapper around ``getattr`` and dispatches on the return type, for each of the 40 fields of
each of 100 debtors. Here a validated query document is compiled once into a tree of field
plans (the fields grouped by graphql-core's own ``collect_fields``, each with its completion
chosen from its type), and each request walks that tree:

- a plain attribute field (a Strawberry field without resolver or field extension) is a
  ``getattr`` and a leaf coercion, with no resolve info built;
- a field with a resolver is called exactly as graphql-core calls it: the same resolve info
  (Strawberry's), the same arguments (graphql-core's ``get_argument_values``, computed once
  per field of the document instead of once per object), concurrently with its siblings (so
  dataloaders batch as before);
- errors are located, masked and propagated to the nearest nullable field by the executor's
  own ``handle_field_error`` and collected errors.

Anything else runs graphql-core's executor unchanged: mutations and subscriptions, documents
with directives (``@skip``/``@include``), fragment variables, abstract types (``node``,
``nodes``, unions), introspection, resolver middleware, and at run time any value the tree
was not built for (an async iterable, awaitable list items, an awaitable ``is_type_of``).

``GRAPHQL_CHECK_COMPILED`` (on in the tests) runs every query through both and records any
difference in data or errors in :data:`MISMATCHES`: the whole test suite proves the two equal.
It doubles the work of every query, so the settings refuse it when ENV=production.
"""

from __future__ import annotations

import contextvars
import copy
import keyword
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from graphql import (
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationType,
    Undefined,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList, collect_fields, collect_subfields
from graphql.execution.values import get_argument_values
from graphql.language import Visitor, visit
from graphql.pyutils import Path, gather_with_cancel, inspect, is_iterable
from graphql.type import GraphQLBoolean, GraphQLID, GraphQLInt, GraphQLString
from graphql.type.scalars import serialize_id
from strawberry import relay
from strawberry.schema.schema_converter import CustomGraphQLEnumType
from strawberry.schema.types import base_scalars
from strawberry.types.arguments import convert_arguments

from debtgraph.schema.base import BATCH, RowsConnection, RowShape
from debtgraph.schema.caches import DOCUMENTS
from debtgraph.schema.live import SharedEventExecutor

log = logging.getLogger("debtgraph.graphql")

# Set while the standard executor re-runs a query to check the compiled path: the statements it
# runs are the check's, not the request's (tests pin statement counts of requests).
SHADOW_RUN: contextvars.ContextVar[bool] = contextvars.ContextVar("graphql_shadow", default=False)
# Differences found by the check, for the tests to fail on (tests/conftest.py); the first
# MAX_MISMATCHES only (each is logged), so a long-running check cannot grow it without bound.
MISMATCHES: list[str] = []
MAX_MISMATCHES = 100

_BACKREF = "strawberry-definition"
_MAX_INT = 2**31
# Never an attribute's value: an attribute that is missing goes the way that raises its error.
_MISSING = object()
_IDENTITY: dict[Any, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}


class _Unsupported(Exception):
    """A value the compiled tree was not built for: the standard executor takes the request."""


class FieldPlan:
    """One response key of a selection: how to get its value and how to complete it."""

    __slots__ = (
        "args",
        "attr",
        "batch",
        "complete",
        "details",
        "field_def",
        "fused",
        "identity",
        "int_leaf",
        "key",
        "leaf",
        "name",
        "node_type",
        "nodes",
        "nullable",
        "parent_type",
        "read_one",
        "readable",
        "resolve",
        "return_type",
        "strawberry_field",
        "typename",
    )

    def __init__(self, key: str, parent_type: GraphQLObjectType, details: FieldDetailsList) -> None:
        self.key = key
        self.parent_type = parent_type
        self.details = details
        self.nodes = [d.node for d in details]
        self.name = self.nodes[0].name.value
        self.typename: str | None = None
        self.field_def: Any = None  # set with return_type for every field but __typename
        self.return_type: Any = None
        self.attr: str | None = None
        self.resolve: Callable[..., Any] | None = None
        self.args = False
        self.complete: Completion | None = None
        # The Node class whose default ``id`` resolver this field is (see _relay_node).
        self.node_type: type[relay.Node] | None = None
        # A plain attribute of a scalar type; values of type ``identity`` are answered as they
        # are (the built-in scalars' coercion is the identity on them, see _leaf).
        self.leaf: str | None = None
        self.identity: type | None = None
        self.int_leaf = False
        self.nullable = True
        # Read by the object's reader, when it has one (see _reader).
        self.readable = False
        # The field's resolver for many parents at once (see _batch_of), and what its values
        # are read by when their reader reads them whole (see _object_reader).
        self.batch: Callable[..., Awaitable[list[Any]]] | None = None
        self.read_one: Callable[[Any], Any] | None = None
        self.strawberry_field: Any = None
        # A connection's ``nodes``, read from its rows when it is a RowsConnection (_FusedRows).
        self.fused = False


class _Failed:
    """An object of a list that failed: its error, raised where graphql-core raises it."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


# A completion: ("leaf", type), ("nonnull", inner), ("list", inner), or ("object", type, plans,
# batched): batched when one of the plans resolves many parents at once (see _batch_of).
Completion = tuple[Any, ...]


class Plan:
    """A compiled query: the root fields."""

    __slots__ = ("fields", "root_type")

    def __init__(self, root_type: GraphQLObjectType, fields: list[FieldPlan]) -> None:
        self.root_type = root_type
        self.fields = fields


# What a compiled plan costs the document cache, in text bytes' worth (its budget's unit: a
# text byte parses into ~50-100 bytes of nodes). Measured: a field plan ~1 KB, a generated
# reader ~1.8 KB. Charged so that alias-heavy documents, whose plans weigh hundreds of times
# their text, cannot pin more memory than the budget says.
FIELD_PLAN_WEIGHT = 16
READER_WEIGHT = 24
# The readers of a connection's nodes from its rows, generated on first use: at most
# FUSED_LAYOUTS of them (one per row layout), each measured at ~11 KB for a Debtor's 40 fields.
FUSED_LAYOUTS = 4
FUSED_READER_WEIGHT = 150


def plan_weight(plan: Plan | None) -> int:
    """The cache weight of a plan: its field plans and generated readers (see above)."""
    if plan is None:
        return 0
    total = 0
    stack = list(plan.fields)
    while stack:
        field = stack.pop()
        total += FIELD_PLAN_WEIGHT + (FUSED_LAYOUTS * FUSED_READER_WEIGHT if field.fused else 0)
        completion = field.complete
        while completion is not None and completion[0] in ("nonnull", "list"):
            completion = completion[1]
        if completion is not None and completion[0] == "object":
            _kind, _type, fields, _batched, reader, leaves, _unread, _unbatched = completion
            total += READER_WEIGHT * ((reader is not None) + (leaves is not None))
            stack.extend(fields)
    return total


class _HasDirective(Visitor):
    found = False

    def enter_directive(self, *_: Any) -> None:
        self.found = True


def _has_directives(executor: Any) -> bool:
    finder = _HasDirective()
    visit(executor.operation, finder)
    for fragment in executor.fragment_definitions.values():
        visit(fragment, finder)
    return finder.found


def _compile_fields(
    executor: Any, parent_type: GraphQLObjectType, grouped: dict[str, FieldDetailsList]
) -> list[FieldPlan] | None:
    schema = executor.schema
    plans: list[FieldPlan] = []
    for key, details in grouped.items():
        if any(d.fragment_variable_values is not None or d.defer_usage for d in details):
            return None
        plan = FieldPlan(key, parent_type, details)
        if plan.name == "__typename":
            plan.typename = parent_type.name
            plans.append(plan)
            continue
        if plan.name.startswith("__"):
            return None  # introspection
        field_def = schema.get_field(parent_type, plan.name)
        if field_def is None:
            return None
        plan.field_def = field_def
        plan.return_type = field_def.type
        plan.args = bool(field_def.args or plan.nodes[0].arguments)
        resolve = field_def.resolve
        strawberry_field = (field_def.extensions or {}).get(_BACKREF)
        if strawberry_field is not None and _is_plain_attribute(resolve, strawberry_field):
            plan.attr = strawberry_field.python_name
        elif resolve is not None:
            plan.resolve = resolve
            plan.node_type = _relay_node(parent_type, strawberry_field)
            plan.strawberry_field = strawberry_field
            plan.batch = _batch_of(executor, strawberry_field)
        else:
            return None  # graphql-core's default resolver: not a Strawberry field
        completion = _compile_type(executor, field_def.type, details)
        if completion is None:
            return None
        plan.complete = completion
        if plan.batch is not None:
            plan.read_one = _object_reader(completion)
        leaf = completion[1] if completion[0] == "nonnull" else completion
        if plan.attr is not None and leaf[0] == "leaf":
            plan.leaf = plan.attr
            plan.nullable = completion[0] != "nonnull"
            plan.identity = _IDENTITY.get(leaf[1])
            plan.int_leaf = leaf[1] is GraphQLInt
        plans.append(plan)
    return plans


def _is_plain_attribute(resolve: Any, strawberry_field: Any) -> bool:
    """Whether Strawberry resolves the field by ``getattr`` alone, with nothing around it.

    Strawberry marks ``_is_default`` every resolver of a field without its own resolver, also
    one wrapped in field extensions or permission classes (a permission is an extension): the
    attribute path would skip them. Only its basic resolver (no resolver, no extension, no
    exception handler) is read as an attribute; anything else, or a Strawberry that names it
    otherwise, is called as graphql-core calls it.
    """
    return (
        resolve is not None
        and getattr(resolve, "_is_default", False)
        and getattr(resolve, "__name__", None) == "_get_basic_result"
        and strawberry_field is not None
        and strawberry_field.is_basic_field
        and not strawberry_field.permission_classes
        and strawberry_field.default_resolver is getattr
    )


def _relay_node(parent_type: GraphQLObjectType, strawberry_field: Any) -> type[relay.Node] | None:
    """The Node class when the field is its Relay ``id`` through Strawberry's own resolver.

    That resolver answers ``GlobalID(info.path.typename, str(getattr(root, id_attr)))`` for a
    root of the class; with resolve_id and resolve_typename not overridden the compiled path
    builds the same value without the resolver's wrapping (info, argument conversion).
    """
    if strawberry_field is None or strawberry_field.python_name != "_id":
        return None
    resolver = strawberry_field.base_resolver
    if resolver is None or strawberry_field.extensions:
        return None
    definition = parent_type.extensions.get(_BACKREF) if parent_type.extensions else None
    origin = getattr(definition, "origin", None)
    if not (isinstance(origin, type) and issubclass(origin, relay.Node)):
        return None
    if (
        getattr(resolver.wrapped_func, "__func__", None) is not _NODE_ID
        or origin.resolve_id.__func__ is not _NODE_RESOLVE_ID  # type: ignore[attr-defined]
        or origin.resolve_typename.__func__ is not _NODE_RESOLVE_TYPENAME  # type: ignore[attr-defined]
    ):
        return None
    return origin


def _batch_of(executor: Any, strawberry_field: Any) -> Callable[..., Awaitable[list[Any]]] | None:
    """The field's resolver for many parents (``schema.base.batched``), when it may replace it.

    Only a field with nothing around its resolver: no extension or permission (a permission is
    an extension), no exception handler of the schema. Strawberry would run those per parent.
    """
    if (
        strawberry_field is None
        or strawberry_field.extensions
        or strawberry_field.permission_classes
    ):
        return None
    many = (strawberry_field.metadata or {}).get(BATCH)
    strawberry_schema = getattr(executor.schema, "_strawberry_schema", None)
    if many is None or strawberry_schema is None:
        return None
    if strawberry_schema.schema_converter.exception_handlers:
        return None
    return many  # type: ignore[no-any-return]


_NODE_ID = relay.Node._id.__func__  # type: ignore[attr-defined]
_GLOBAL_ID_STR = relay.GlobalID.__str__
_NODE_RESOLVE_ID = relay.Node.resolve_id.__func__  # type: ignore[attr-defined]
_NODE_RESOLVE_TYPENAME = relay.Node.resolve_typename.__func__  # type: ignore[attr-defined]


def _compile_type(
    executor: Any, return_type: GraphQLOutputType, details: FieldDetailsList
) -> Completion | None:
    if is_non_null_type(return_type):
        inner = _compile_type(executor, return_type.of_type, details)  # type: ignore[attr-defined]
        return None if inner is None else ("nonnull", inner)
    if is_list_type(return_type):
        inner = _compile_type(executor, return_type.of_type, details)  # type: ignore[attr-defined]
        return None if inner is None else ("list", inner)
    if is_leaf_type(return_type):
        return ("leaf", return_type)
    if is_abstract_type(return_type) or not is_object_type(return_type):
        return None
    assert isinstance(return_type, GraphQLObjectType)
    grouped, _defers, forbidden = collect_subfields(
        executor.schema,
        executor.fragments,
        executor.variable_values,
        executor.operation,
        return_type,
        details,
        executor.hide_suggestions,
    )
    if forbidden:
        return None
    fields = _compile_fields(executor, return_type, grouped)
    if fields is None:
        return None
    batched = any(f.batch is not None for f in fields)
    reader = None if batched else _reader(fields)
    leaves = _reader(fields, partial=True) if batched else None
    if leaves is not None:
        for field in fields:
            field.readable = _readable(field)
    # For complete_objects, once per selection rather than once per object: the fields it runs
    # one by one when the leaf reader read the object, and when it did not.
    unbatched = [f for f in fields if f.batch is None]
    unread = [f for f in unbatched if not f.readable]
    return ("object", return_type, fields, batched, reader, leaves, unread, unbatched)


class _Slow(Exception):
    """A value a reader does not answer as it is: the field by field path answers it."""


def _readable(plan: FieldPlan) -> bool:
    if plan.typename is not None:
        return True
    completion = plan.complete
    assert completion is not None
    leaf = completion[1] if completion[0] == "nonnull" else completion
    if leaf[0] == "list" and plan.attr is not None:
        listed = _identity_list(completion) is not None or _read_list(completion) is not None
        return listed and _attribute_name(plan.attr)
    if leaf[0] == "object" and plan.attr is not None:
        return _read_object(completion) is not None and _attribute_name(plan.attr)
    if leaf[0] != "leaf":
        return False
    if plan.attr is not None:
        return _attribute_name(plan.attr)
    return plan.node_type is not None


def _attribute_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _read_object(completion: Completion) -> Completion | None:
    """The object completion of a (non-null) object that its reader reads (as _read_list's
    items), else None: a connection's page info, an edge's node."""
    item = completion[1] if completion[0] == "nonnull" else completion
    if item[0] != "object" or item[3] or item[4] is None:
        return None
    is_type_of = item[1].is_type_of
    return item if is_type_of is None or _ignores_info(is_type_of) else None


def _read_list(completion: Completion) -> Completion | None:
    """The object completion of a (non-null) list of objects that _read_all reads (a reader
    of their own, no batched field, an is_type_of that reads the object only), else None:
    a connection's nodes."""
    listed = completion[1] if completion[0] == "nonnull" else completion
    return _read_object(listed[1]) if listed[0] == "list" else None


def _identity_list(completion: Completion) -> type | None:
    """The item type of a (non-null) list of built-in strings or booleans, else None."""
    listed = completion[1] if completion[0] == "nonnull" else completion
    if listed[0] != "list":
        return None
    item = listed[1][1] if listed[1][0] == "nonnull" else listed[1]
    return _IDENTITY.get(item[1]) if item[0] == "leaf" else None


def _reader(
    plans: list[FieldPlan],
    *,
    partial: bool = False,
    shape: RowShape[Any] | None = None,
    positions: dict[str, int] | None = None,
) -> Callable[[Any], dict[str, Any] | None] | None:
    """One function reading every field of an object whose fields are all scalar reads (or
    lists of objects that have a reader themselves: a connection and its nodes).

    Generated once per object selection of the document: each field is read and checked in
    line, without a call per field; ``partial``, only the fields it can read, the others given
    their place in the answer (None) for the caller to fill. It answers exactly what
    execute_fields answers when no field fails; any value it does not take as it is (of another
    type, null where non-null, a failed coercion, an exception) makes it answer None, and the
    object goes field by field, which reads the same values (reads of plain attributes, no side
    effect) and locates the errors.

    With a ``shape`` (and the ``positions`` of its columns), it reads a Core row of those
    columns instead of the node the shape builds from it: the shape's own code computes every
    field into a local as the node's constructor does (schema.base.RowShape.fields_code), and
    each field is read from its local where the node's attribute would be. None when a field
    is no field of the shape's (a resolver, a list of objects, another node type).
    """
    readable = [_readable(plan) for plan in plans]
    if not any(readable) or not (partial or all(readable)):
        return None
    env: dict[str, Any] = {
        "_Slow": _Slow,
        "Undefined": Undefined,
        "GlobalID": relay.GlobalID,
        "M": _MAX_INT,
    }
    lines = ["def read(s):", " try:"]
    values: dict[str, str] | None = None
    if shape is not None:
        assert positions is not None
        assert not partial
        if not all(readable):
            return None
        prelude, shape_env, values = shape.fields_code(lambda c: f"s[{positions[c]}]", "q")
        env.update(shape_env)
        lines += [f"    {line}" for line in prelude]

    def read(attr: str) -> str | None:
        """The expression of an attribute's value: the node's, or the shape's local for it."""
        if values is None:
            return f"s.{attr}"
        return values.get(attr)

    items: list[str] = []
    for n, plan in enumerate(plans):
        if not readable[n]:
            items.append(f"{plan.key!r}: None")  # a place kept for a field read otherwise
            continue
        if plan.typename is not None:
            items.append(f"{plan.key!r}: {plan.typename!r}")
            continue
        completion = plan.complete
        assert completion is not None
        nonnull = completion[0] == "nonnull"
        leaf_type = (completion[1] if nonnull else completion)[1]
        v = f"v{n}"
        listed = _identity_list(completion)
        if listed is not None:
            # A list of strings (or booleans) answered as a new list of the same items.
            env[f"I{n}"] = listed
            expression = read(plan.attr)  # type: ignore[arg-type]
            if expression is None:
                return None
            lines.append(f"    {v} = {expression}")
            if nonnull:
                lines.append(f"    if {v} is None: raise _Slow")
            lines.append(f"    if {v} is not None:")
            lines.append(f"        if type({v}) is not list: raise _Slow")
            lines.append(f"        for x in {v}:")
            lines.append(f"            if type(x) is not I{n}: raise _Slow")
            lines.append(f"        {v} = list({v})")
            items.append(f"{plan.key!r}: {v}")
            continue
        single = _read_object(completion) if plan.attr is not None else None
        objects = _read_list(completion) if single is None else None
        if single is not None or objects is not None:
            if values is not None:
                return None  # a node built from a row has no object (nor list) as an attribute
            # An object, or a list of objects, each by its own reader (what complete_object
            # and complete_list answer when they read clean; else the field by field way).
            env[f"O{n}"] = _object_reader(single or objects)  # type: ignore[arg-type]
            pad = "    "
            if objects is not None and plan.attr == "nodes":
                # A connection of Core rows (RowsConnection): its nodes read from its rows when
                # they read clean, else built and read as any other connection's.
                env["RC"] = RowsConnection
                env[f"FR{n}"] = _FusedRows(objects)
                plan.fused = True
                lines.append(f"    {v} = FR{n}(s) if type(s) is RC else None")
                lines.append(f"    if {v} is None:")
                pad += "    "
            lines.append(f"{pad}{v} = s.{plan.attr}")
            if nonnull:
                lines.append(f"{pad}if {v} is None: raise _Slow")
            lines.append(f"{pad}if {v} is not None:")
            if objects is not None:
                env["R"] = _read_all
                lines.append(f"{pad}    if type({v}) is not list: raise _Slow")
                lines.append(f"{pad}    {v} = R(O{n}, {v})")
            else:
                lines.append(f"{pad}    {v} = O{n}({v})")
            lines.append(f"{pad}    if {v} is None: raise _Slow")
            items.append(f"{plan.key!r}: {v}")
            continue
        if plan.attr is not None:
            expression = read(plan.attr)
            if expression is None:
                return None
            lines.append(f"    {v} = {expression}")
        else:
            assert plan.node_type is not None
            env[f"T{n}"] = plan.node_type
            env[f"A{n}"] = plan.node_type.resolve_id_attr()
            env[f"N{n}"] = plan.parent_type.name
            if values is None:
                lines.append(f"    if type(s) is not T{n}: raise _Slow")
                node_id = f"getattr(s, A{n})"
            elif shape is not None and shape.node is plan.node_type:
                node_id = values.get(plan.node_type.resolve_id_attr())  # type: ignore[assignment]
                if node_id is None:
                    return None
            else:
                return None  # the shape builds another type than the field's node
            if _plain_id(leaf_type):
                # What ID's coercion answers for that GlobalID (its str, the base64 of both
                # parts), without the GlobalID: the id of every node of a page.
                env["B"] = _global_id_text
                lines.append(f"    {v} = B(N{n}, str({node_id}))")
                items.append(f"{plan.key!r}: {v}")
                continue
            lines.append(f"    {v} = GlobalID(type_name=N{n}, node_id=str({node_id}))")
        if nonnull:
            lines.append(f"    if {v} is None: raise _Slow")
        identity = _IDENTITY.get(leaf_type)
        names = _enum_names(leaf_type) if plan.attr is not None else None
        if names is not None:
            # Strawberry's enum coercion of a member of its enum, looked up: the name its
            # coercion finds for each member, found once (any other value is coerced).
            env[f"W{n}"] = leaf_type.wrapped_cls
            env[f"E{n}"] = names
            env[f"C{n}"] = leaf_type.coerce_output_value
            lines.append(f"    if {v} is not None:")
            lines.append(f"        if type({v}) is W{n}: {v} = E{n}[{v}]")
            lines.append("        else:")
            lines.append(f"            if isinstance({v}, Exception): raise _Slow")
            lines.append(f"            {v} = C{n}({v})")
            lines.append(f"            if {v} is None or {v} is Undefined: raise _Slow")
        elif identity is not None and plan.attr is not None:
            env[f"I{n}"] = identity
            lines.append(f"    if {v} is not None and type({v}) is not I{n}: raise _Slow")
        elif leaf_type is GraphQLInt and plan.attr is not None:
            lines.append(
                f"    if {v} is not None and (type({v}) is not int or not -M <= {v} < M):"
                " raise _Slow"
            )
        else:
            env[f"C{n}"] = leaf_type.coerce_output_value
            lines.append(f"    if {v} is not None:")
            pad = "        "
            if leaf_type.coerce_output_value is base_scalars.isoformat:
                # Strawberry's DateTime: isoformat, which orjson writes the same for an aware
                # UTC datetime (the columns' own; tests/unit/test_compiled_leaves.py), at a third
                # of the cost: a page shows some hundreds of them. Any other value is coerced.
                env["DT"], env["UTC"], env["J"] = datetime, UTC, orjson.dumps
                lines.append(f"        if type({v}) is DT and {v}.tzinfo is UTC:")
                lines.append(f"            {v} = J({v})[1:-1].decode()")
                lines.append("        else:")
                pad += "    "
            lines.append(f"{pad}if isinstance({v}, Exception): raise _Slow")
            lines.append(f"{pad}{v} = C{n}({v})")
            lines.append(f"{pad}if {v} is None or {v} is Undefined: raise _Slow")
        items.append(f"{plan.key!r}: {v}")
    if len(lines) == 2:
        lines.append("    pass")  # every field a constant (``__typename``): nothing to read
    lines.append(" except Exception:")
    lines.append("    return None")
    lines.append(" return {" + ", ".join(items) + "}")
    exec("\n".join(lines), env)  # noqa: S102 - generated from the schema's own names only
    return env["read"]  # type: ignore[no-any-return]


class _FusedRows:
    """The nodes of a RowsConnection read from its rows: for each row layout (its shape and
    columns), one reader (_reader with the shape) computing the selected fields from the
    columns, without the nodes. None, and the nodes are built and read, when the selection is
    not all fields of the shape's node, or a row does not read clean."""

    __slots__ = ("fields", "is_type_of", "last", "readers")

    def __init__(self, objects: Completion) -> None:
        self.fields: list[FieldPlan] = objects[2]
        self.is_type_of = objects[1].is_type_of
        self.readers: dict[tuple[Any, ...], Callable[[Any], Any] | None] = {}
        # The last result's metadata, shape and reader: a nested page reads a connection per
        # parent from one result.
        self.last: tuple[Any, Any, Callable[[Any], Any] | None] = (object(), None, None)

    def __call__(self, connection: RowsConnection[Any]) -> list[Any] | None:
        if connection.built:
            # Nodes already built are what the standard executor reads: those, not the rows.
            return None
        rows = connection.page.items
        if not rows:
            return []
        shape = connection.shape
        metadata = getattr(rows[0], "_parent", None)
        last = self.last
        if last[0] is metadata and last[1] is shape and metadata is not None:
            read = last[2]
        else:
            read = self._reader_for(shape, rows[0])
            self.last = (metadata, shape, read)
        return _read_all(read, rows)

    def _reader_for(self, shape: RowShape[Any], row: Any) -> Callable[[Any], Any] | None:
        try:
            # Its length too: a row with an unnamed column names one column fewer than it has.
            key = (shape, row._fields, len(row))
        except Exception:
            return None  # no Core row: the nodes are built
        if key in self.readers:
            return self.readers[key]
        read: Callable[[Any], Any] | None = None
        try:
            positions = shape.positions(row)
        except KeyError:
            positions = None  # rows lacking a column: building them raises, where it is located
        is_type_of = self.is_type_of
        # The node the shape builds is of the selection's type as its is_type_of finds it (on
        # an empty instance: Strawberry's reads the class only, see _ignores_info). Strawberry's
        # takes any Node for a Node type: another type's shape is refused by its id's check in
        # _reader.
        if positions is not None and (
            is_type_of is None or is_type_of(object.__new__(shape.node), None) is True
        ):
            try:
                read = _reader(self.fields, shape=shape, positions=positions)
            except Exception:
                # A defect of the compiler, never of the caller: the nodes are built and read,
                # and the failure is logged once per layout (and kept in MISMATCHES, bounded,
                # which the tests fail on).
                log.exception("generating a reader of rows failed; the nodes are built")
                if len(MISMATCHES) < MAX_MISMATCHES:
                    MISMATCHES.append("generating a reader of rows failed (see the log)")
        if len(self.readers) >= FUSED_LAYOUTS:
            del self.readers[next(iter(self.readers))]
        self.readers[key] = read
        return read


def _global_id_text(type_name: str, node_id: str) -> str:
    """``str(GlobalID(type_name, node_id))``: Strawberry's own rule for it."""
    return relay.to_base64(type_name, node_id)


def _plain_id(leaf_type: Any) -> bool:
    """Whether a Relay id of this type is answered as graphql-core's ID answers a GlobalID:
    its ``str`` (serialize_id), which is Strawberry's base64 of its two parts."""
    return (
        leaf_type is GraphQLID
        and GraphQLID.coerce_output_value is serialize_id
        and relay.GlobalID.__str__ is _GLOBAL_ID_STR
    )


def _enum_names(leaf_type: Any) -> dict[Any, str] | None:
    """For Strawberry's enum type, the name its output coercion answers for each member of its
    Python enum (by the same search, once); None for any other type."""
    if type(leaf_type) is not CustomGraphQLEnumType:
        return None
    names: dict[Any, str] = {}
    member: Any
    for member in leaf_type.wrapped_cls:
        for name, value in leaf_type.values.items():
            if member.value == value.value:
                names[member] = name
                break
    return names


def compile_plan(executor: Any) -> Plan | None:
    """The compiled tree of the executor's operation, or None when it is not covered."""
    operation = executor.operation
    if operation.operation is not OperationType.QUERY or _has_directives(executor):
        return None
    root_type = executor.schema.get_root_type(operation.operation)
    if root_type is None:
        return None
    grouped, _defers, forbidden = collect_fields(
        executor.schema,
        executor.fragments,
        executor.variable_values,
        root_type,
        operation,
        executor.hide_suggestions,
    )
    if forbidden:
        return None
    fields = _compile_fields(executor, root_type, grouped)
    return None if fields is None else Plan(root_type, fields)


def plan_for(executor: Any) -> Plan | None:
    """The plan of this document and operation, kept with the document when it is kept.

    Plans live in the document cache's entry (schema/caches.py) so that one byte budget bounds
    documents and plans together and evicting a document drops its plans; a document not kept
    (too long, or run without the extensions) is compiled on each request.
    """
    operation = executor.operation
    plans = None if operation.loc is None else DOCUMENTS.plans(operation.loc.source.body, operation)
    if plans is None:
        return _compiled_or_none(executor)
    key = (id(executor.schema), operation.name.value if operation.name else None)
    try:
        return plans[key]  # type: ignore[no-any-return]
    except KeyError:
        # A failure is kept as None like any uncovered document: compiled and logged once, not
        # on every request that sends the document again.
        plan = plans[key] = _compiled_or_none(executor)
        assert operation.loc is not None  # DOCUMENTS.plans found its text
        DOCUMENTS.charge(operation.loc.source.body, plan_weight(plan))
        return plan


def _compiled_or_none(executor: Any) -> Plan | None:
    """compile_plan, or None (graphql-core's executor) when the compiler fails on the document.

    Such a failure is a defect of the compiler, never of the caller: it is logged with its trace
    and, under the check (the tests), counted as a mismatch. Raised, it would leave the
    extensions that mask errors, and its text would reach the caller as it is.
    """
    try:
        return compile_plan(executor)
    except Exception:
        log.exception("compiling the query failed; graphql-core's executor answers it")
        settings = getattr(executor.context_value, "settings", None)
        if getattr(settings, "graphql_check_compiled", False) and len(MISMATCHES) < MAX_MISMATCHES:
            MISMATCHES.append("compiling the query failed (see the log)")
        return None


def _leaf(return_type: Any, value: Any) -> Any:
    # The built-in scalars' coercion is the identity on values of their own type.
    kind = type(value)
    if kind is str and (return_type is GraphQLString or return_type is GraphQLID):
        return value
    if kind is bool and return_type is GraphQLBoolean:
        return value
    if kind is int and return_type is GraphQLInt and -_MAX_INT <= value < _MAX_INT:
        return value
    coerced = return_type.coerce_output_value(value)
    if coerced is Undefined or coerced is None:
        raise TypeError(
            f"Expected `{inspect(return_type)}.coerce_output_value({inspect(value)})` to return"
            f" non-nullable value, returned: {inspect(coerced)}"
        )
    return coerced


class _Run:
    """One execution of a plan on (a copy of) graphql-core's executor."""

    def __init__(self, executor: Any) -> None:
        self.ex = executor
        self.is_awaitable = executor.is_awaitable
        self.args: dict[int, Any] = {}

    def arguments(self, plan: FieldPlan) -> dict[str, Any]:
        # The arguments do not depend on the object: coerced once per field of the document.
        cached = self.args.get(id(plan))
        if cached is None:
            details = plan.details[0]
            try:
                cached = get_argument_values(
                    plan.field_def,
                    details.node,
                    self.ex.variable_values,
                    details.fragment_variable_values,
                    self.ex.hide_suggestions,
                )
            except Exception as exc:
                cached = exc
            self.args[id(plan)] = cached
        if isinstance(cached, Exception):
            raise cached
        return cached  # type: ignore[no-any-return]

    def execute_fields(self, plans: list[FieldPlan], source: Any, path: Path | None) -> Any:
        results: dict[str, Any] = {}
        pending: list[str] = []
        is_awaitable = self.is_awaitable
        try:
            for plan in plans:
                leaf = plan.leaf
                if leaf is not None:
                    # The commonest field, inline: an attribute already of its scalar's type.
                    try:
                        value = getattr(source, leaf)
                    except Exception:
                        value = _MISSING  # execute_field reads it again and handles its error
                    kind = type(value)
                    if (
                        kind is plan.identity
                        or (value is None and plan.nullable)
                        or (kind is int and plan.int_leaf and -_MAX_INT <= value < _MAX_INT)
                    ):
                        results[plan.key] = value
                        continue
                    if value is not _MISSING:
                        results[plan.key] = self.leaf_value(plan, value, path)
                        continue
                value = self.execute_field(plan, source, path)
                results[plan.key] = value
                if is_awaitable(value):
                    pending.append(plan.key)
        except Exception:
            if pending:
                self.ex.settle_in_background([results[key] for key in pending])
            raise
        if not pending:
            return results

        async def gather() -> dict[str, Any]:
            if len(pending) == 1:
                key = pending[0]
                results[key] = await results[key]
            else:
                values = await gather_with_cancel(*(results[key] for key in pending))
                results.update(zip(pending, values, strict=True))
            return results

        return gather()

    def execute_field(self, plan: FieldPlan, source: Any, parent: Path | None) -> Any:
        if plan.typename is not None:
            return plan.typename
        attr = plan.attr
        if plan.leaf is not None:
            try:
                value = getattr(source, plan.leaf)
            except Exception as raw:
                path = Path(parent, plan.key, plan.parent_type.name)
                self.ex.handle_field_error(raw, plan.return_type, plan.details, path)
                return None
            return self.leaf_value(plan, value, parent)
        node_type = plan.node_type
        if node_type is not None and type(source) is node_type:
            # The Relay id of a Node: a leaf, its path built on error only.
            try:
                node_id = getattr(source, node_type.resolve_id_attr())
                value = relay.GlobalID(type_name=plan.parent_type.name, node_id=str(node_id))
                return self.complete(plan, plan.complete, value, parent)  # type: ignore[arg-type]
            except Exception as raw:
                path = Path(parent, plan.key, plan.parent_type.name)
                self.ex.handle_field_error(raw, plan.return_type, plan.details, path)
                return None
        path = Path(parent, plan.key, plan.parent_type.name)
        try:
            if attr is not None:
                value = getattr(source, attr)
            else:
                info = self.ex.build_resolve_info(
                    plan.field_def, plan.nodes, plan.parent_type, path
                )
                args = self.arguments(plan) if plan.args else {}
                value = plan.resolve(source, info, **args)  # type: ignore[misc]
                if self.is_awaitable(value):
                    return self.await_field(plan, value, path)
            completed = self.complete(plan, plan.complete, value, path)  # type: ignore[arg-type]
            if self.is_awaitable(completed):
                return self.await_completed(plan, completed, path)
        except _Unsupported:
            raise
        except Exception as raw:
            self.ex.handle_field_error(raw, plan.return_type, plan.details, path)
            return None
        return completed

    def leaf_value(self, plan: FieldPlan, value: Any, parent: Path | None) -> Any:
        """An attribute of a scalar type, read: its path is built on error only."""
        try:
            return self.complete(plan, plan.complete, value, parent)  # type: ignore[arg-type]
        except Exception as raw:
            path = Path(parent, plan.key, plan.parent_type.name)
            self.ex.handle_field_error(raw, plan.return_type, plan.details, path)
            return None

    async def await_field(self, plan: FieldPlan, awaitable: Awaitable[Any], path: Path) -> Any:
        try:
            value = await awaitable
            completed = self.complete(plan, plan.complete, value, path)  # type: ignore[arg-type]
            if self.is_awaitable(completed):
                completed = await completed
        except _Unsupported:
            raise
        except Exception as raw:
            self.ex.handle_field_error(raw, plan.return_type, plan.details, path)
            return None
        return completed

    async def await_completed(self, plan: FieldPlan, completed: Awaitable[Any], path: Path) -> Any:
        try:
            return await completed
        except _Unsupported:
            raise
        except Exception as raw:
            self.ex.handle_field_error(raw, plan.return_type, plan.details, path)
            return None

    def complete(self, plan: FieldPlan, completion: Completion, value: Any, path: Path) -> Any:
        if isinstance(value, Exception):
            raise value
        kind = completion[0]
        if kind == "nonnull":
            completed = self.complete(plan, completion[1], value, path)
            if completed is None:
                raise TypeError(
                    f"Cannot return null for non-nullable field {plan.parent_type}.{plan.name}."
                )
            return completed
        if value is None or value is Undefined:
            return None
        if kind == "leaf":
            return _leaf(completion[1], value)
        if kind == "list":
            return self.complete_list(plan, completion[1], value, path)
        return self.complete_object(plan, completion, value, path)

    def complete_list(self, plan: FieldPlan, item: Completion, value: Any, path: Path) -> Any:
        if self.ex.is_async_iterable(value):
            raise _Unsupported("async iterable")
        if not is_iterable(value):
            raise GraphQLError(
                "Expected Iterable, but did not find one for field"
                f" '{plan.parent_type}.{plan.name}'."
            )
        target = item[1] if item[0] == "nonnull" else item
        if target[0] == "object" and target[3]:
            return self.complete_objects(plan, item, list(value), path)
        if target[0] == "object" and target[4] is not None:
            value = list(value)
            read = _read_all(_object_reader(target), value)
            if read is not None:
                return read
        item_type = _type_of(item)
        results: list[Any] = []
        pending: list[int] = []
        is_awaitable = self.is_awaitable
        for index, element in enumerate(value):
            item_path = path.add_key(index, None)
            if is_awaitable(element):
                raise _Unsupported("awaitable list item")
            try:
                completed = self.complete(plan, item, element, item_path)
                if is_awaitable(completed):
                    pending.append(index)
                    completed = self.await_item(plan, item_type, completed, item_path)
                results.append(completed)
            except _Unsupported:
                raise
            except Exception as raw:
                self.ex.handle_field_error(raw, item_type, plan.details, item_path)
                results.append(None)
        if not pending:
            return results

        async def gather() -> list[Any]:
            if len(pending) == 1:
                index = pending[0]
                results[index] = await results[index]
            else:
                values = await gather_with_cancel(*(results[i] for i in pending))
                for index, completed in zip(pending, values, strict=True):
                    results[index] = completed
            return results

        return gather()

    async def await_item(
        self, plan: FieldPlan, item_type: Any, completed: Awaitable[Any], path: Path
    ) -> Any:
        try:
            return await completed
        except _Unsupported:
            raise
        except Exception as raw:
            self.ex.handle_field_error(raw, item_type, plan.details, path)
            return None

    def complete_object(
        self, plan: FieldPlan, completion: Completion, value: Any, path: Path
    ) -> Any:
        self.check_type(plan, completion[1], value, path)
        reader = completion[4]
        if reader is not None:
            read = reader(value)
            if read is not None:
                return read
        # Field by field, which answers the same or locates the error.
        return self.execute_fields(completion[2], value, path)

    def check_type(
        self, plan: FieldPlan, object_type: GraphQLObjectType, value: Any, path: Path
    ) -> None:
        is_type_of = object_type.is_type_of
        if not is_type_of:
            return
        # Strawberry's own is_type_of reads only the value: no resolve info for it.
        info: Any = (
            None
            if _ignores_info(is_type_of)
            else self.ex.build_resolve_info(plan.field_def, plan.nodes, plan.parent_type, path)
        )
        matches = is_type_of(value, info)
        if self.is_awaitable(matches):
            matches.close()  # type: ignore[union-attr]
            raise _Unsupported("awaitable is_type_of")
        if not matches:
            raise GraphQLError(
                f"Expected value of type '{object_type}' but got: {inspect(value)}.",
                plan.nodes,
            )

    def complete_objects(
        self, plan: FieldPlan, item: Completion, elements: list[Any], path: Path
    ) -> Any:
        """A list of objects with a batched field: each batched field resolved once for all.

        complete_list and execute_fields object by object, in their order, with the batched
        fields left out: graphql-core only creates their coroutines there, and runs them once
        the list is complete, for the objects still standing. Those are then resolved in one
        call per field (resolve_batch), each value completed and its errors handled at its own
        object's path, and each failed object nulled or its error raised as complete_list does.
        """
        nonnull = item[0] == "nonnull"
        completion = item[1] if nonnull else item
        object_type: GraphQLObjectType = completion[1]
        plans: list[FieldPlan] = completion[2]
        leaf_reader = completion[5]
        item_type = _type_of(item)
        is_awaitable = self.is_awaitable
        results: list[Any] = [None] * len(elements)
        paths = [path.add_key(index, None) for index in range(len(elements))]
        standing: list[int] = []
        pending: list[tuple[int, str]] = []
        for index, element in enumerate(elements):
            item_path = paths[index]
            if is_awaitable(element):
                raise _Unsupported("awaitable list item")
            awaited: list[str] = []
            fields: dict[str, Any] | None = None
            try:
                if isinstance(element, Exception):
                    raise element
                if element is None or element is Undefined:
                    if nonnull:
                        raise TypeError(
                            "Cannot return null for non-nullable field"
                            f" {plan.parent_type}.{plan.name}."
                        )
                    continue
                self.check_type(plan, object_type, element, item_path)
                # Every key in place first, so the answer keeps the fields' order.
                fields = leaf_reader(element) if leaf_reader is not None else None
                if fields is None:
                    fields = dict.fromkeys(field.key for field in plans)
                    run = completion[7]
                else:
                    run = completion[6]
                for field in run:
                    value = self.execute_field(field, element, item_path)
                    fields[field.key] = value
                    if is_awaitable(value):
                        awaited.append(field.key)
            except _Unsupported:
                raise
            except Exception as raw:
                if awaited and fields is not None:
                    self.ex.settle_in_background([fields[key] for key in awaited])
                self.ex.handle_field_error(raw, item_type, plan.details, item_path)
                continue
            results[index] = fields
            standing.append(index)
            pending.extend((index, key) for key in awaited)
        batches = [
            (
                field,
                self.resolve_batch(
                    field, [elements[i] for i in standing], [paths[i] for i in standing]
                ),
            )
            for field in plans
            if field.batch is not None and standing
        ]
        if not batches and not pending:
            return results

        async def gather() -> list[Any]:
            awaitables = [_guard(results[i][key]) for i, key in pending]
            awaitables += [awaited for _field, awaited in batches]
            values = await gather_with_cancel(*awaitables)
            failed: dict[int, _Failed] = {}
            for (index, key), value in zip(pending, values, strict=False):
                if isinstance(value, _Failed):
                    failed.setdefault(index, value)
                else:
                    results[index][key] = value
            for (field, _awaited), completed in zip(batches, values[len(pending) :], strict=True):
                for index, value in zip(standing, completed, strict=True):
                    if isinstance(value, _Failed):
                        failed.setdefault(index, value)
                    else:
                        results[index][field.key] = value
            for index in sorted(failed):
                self.ex.handle_field_error(
                    failed[index].error, item_type, plan.details, paths[index]
                )
                results[index] = None
            return results

        return gather()

    async def resolve_batch(
        self, field: FieldPlan, sources: list[Any], paths: list[Path]
    ) -> list[Any]:
        """A batched field of many objects: each its completed value or a _Failed.

        The resolver is called once with the arguments Strawberry gives it per object, and its
        answer for each object (a value, or an exception for that object alone) is completed and
        its errors handled at that object's path, as execute_field does for one object.
        """
        key, parent_name = field.key, field.parent_type.name
        values: list[Any]
        try:
            info = self.ex.build_resolve_info(
                field.field_def, field.nodes, field.parent_type, Path(paths[0], key, parent_name)
            )
            strawberry_info = self.strawberry_info(field, info)
            kwargs = self.strawberry_arguments(field, strawberry_info)
            values = await field.batch(strawberry_info, sources, **kwargs)  # type: ignore[misc]
        except _Unsupported:
            raise
        except Exception as raw:
            values = [raw] * len(sources)
        results: list[Any] = []
        pending: list[int] = []
        read_one = field.read_one
        for index, (value, parent_path) in enumerate(zip(values, paths, strict=True)):
            if read_one is not None:
                # An object its reader reads whole (a connection and its nodes): what complete
                # answers for it, without its path, built below for any other value.
                read = read_one(value)
                if read is not None:
                    results.append(read)
                    continue
            field_path = Path(parent_path, key, parent_name)
            try:
                completed = self.complete(field, field.complete, value, field_path)  # type: ignore[arg-type]
                if self.is_awaitable(completed):
                    completed = self.await_completed(field, completed, field_path)
                    pending.append(index)
            except _Unsupported:
                raise
            except Exception as raw:
                try:
                    completed = self.ex.handle_field_error(
                        raw, field.return_type, field.details, field_path
                    )
                except Exception as error:
                    completed = _Failed(error)
            results.append(completed)
        if pending:
            values = await gather_with_cancel(*(_guard(results[i]) for i in pending))
            for index, value in zip(pending, values, strict=True):
                results[index] = value
        return results

    def strawberry_info(self, field: FieldPlan, info: Any) -> Any:
        schema = self.ex.schema._strawberry_schema
        return schema.config.info_class(_raw_info=info, _field=field.strawberry_field)

    def strawberry_arguments(self, field: FieldPlan, info: Any) -> dict[str, Any]:
        """The resolver's keyword arguments, converted as Strawberry converts them."""
        raw = self.arguments(field) if field.args else {}
        converter = self.ex.schema._strawberry_schema.schema_converter
        return convert_arguments(  # type: ignore[no-any-return]
            raw,
            field.strawberry_field.arguments,
            scalar_registry=converter.scalar_registry,
            config=converter.config,
            info=info,
        )


_STRAWBERRY_IS_TYPE_OF = (
    "strawberry.schema.schema_converter",
    "GraphQLCoreConverter.from_object.<locals>._get_is_type_of.<locals>.is_type_of",
)


def _ignores_info(is_type_of: Any) -> bool:
    return (
        getattr(is_type_of, "__module__", None),
        getattr(is_type_of, "__qualname__", None),
    ) == _STRAWBERRY_IS_TYPE_OF


def _object_reader(completion: Completion) -> Callable[[Any], Any] | None:
    """For an object completion with a reader (non-null or not), a function answering what
    complete answers for a value of the object's type that reads clean, else None (and the
    value goes through complete); None when there is no such reader."""
    target = completion[1] if completion[0] == "nonnull" else completion
    if target[0] != "object" or target[4] is None:
        return None
    reader = target[4]
    is_type_of = target[1].is_type_of
    if is_type_of is not None and not _ignores_info(is_type_of):
        return None

    def read(value: Any) -> Any:
        if value is None or isinstance(value, Exception):
            return None
        if is_type_of is not None and is_type_of(value, None) is not True:  # type: ignore[arg-type]
            return None
        return reader(value)

    return read


def _read_all(read_one: Callable[[Any], Any] | None, elements: list[Any]) -> list[Any] | None:
    """Every object of a list by its object reader (_object_reader), when each reads clean.

    Else None, and the list goes object by object (the reads and Strawberry's is_type_of read
    plain attributes only, so going again answers the same and locates any error).
    """
    if read_one is None:
        return None
    results: list[Any] = []
    for element in elements:
        read = read_one(element)
        if read is None:
            return None
        results.append(read)
    return results


async def _guard(awaitable: Awaitable[Any]) -> Any:
    """The awaited value, or a _Failed for an error that propagates past its field."""
    try:
        return await awaitable
    except _Unsupported:
        raise
    except Exception as error:
        return _Failed(error)


def _type_of(completion: Completion) -> Any:
    """The GraphQL type a completion completes (for error propagation)."""
    kind = completion[0]
    if kind == "nonnull":
        return GraphQLNonNull(_type_of(completion[1]))
    if kind == "list":
        return GraphQLList(_type_of(completion[1]))
    return completion[1]


def run_compiled(executor: Any, plan: Plan) -> Any:
    """Execute ``plan`` on ``executor`` as graphql-core's execute_operation would."""
    run = _Run(executor)
    try:
        data = run.execute_fields(plan.fields, executor.root_value, None)
    except _Unsupported:
        raise
    except GraphQLError as error:
        executor.collected_errors.add(error, None)
        return executor.finish(executor.build_response(None))
    if not executor.is_awaitable(data):
        return executor.finish(executor.build_response(data))

    async def await_data() -> Any:
        try:
            awaited = await data
        except _Unsupported:
            raise
        except GraphQLError as error:
            executor.collected_errors.add(error, None)
            return executor.build_response(None)
        return executor.build_response(awaited)

    return await_data()


def _fresh_copy(executor: Any) -> Any:
    twin = copy.copy(executor)
    twin.collected_errors = type(executor.collected_errors)()
    twin.background_futures = set()
    twin.pending_incremental_futures = set()
    return twin


def _describe(result: Any) -> tuple[str, list[tuple[Any, ...]]]:
    errors = sorted(
        (
            (
                e.message,
                repr(e.path),
                repr(e.locations),
                repr(e.extensions),
                type(e.original_error).__name__,
            )
            for e in (result.errors or [])
        ),
    )
    return repr(result.data), errors


class CompiledExecutor(SharedEventExecutor):
    """The schema's executor: compiled plans for queries, graphql-core for the rest."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        settings = getattr(self.context_value, "settings", None)
        if (
            self.operation.operation is not OperationType.QUERY
            or not getattr(settings, "graphql_compiled", True)
            or self.abort_signal is not None
            or (self.middleware_manager is not None and self.middleware_manager.middlewares)
            or SHADOW_RUN.get()
        ):
            return super().execute_operation(serially)
        plan = plan_for(self)
        if plan is None:
            return super().execute_operation(serially)
        if getattr(settings, "graphql_check_compiled", False):
            return self._checked(plan, serially)
        return self._compiled_or_standard(plan, serially)

    def _compiled_or_standard(self, plan: Plan, serially: bool | None) -> Any:
        twin = _fresh_copy(self)
        try:
            result = run_compiled(twin, plan)
        except _Unsupported:
            return super().execute_operation(serially)
        if not self.is_awaitable(result):
            return result

        async def settle() -> Any:
            try:
                return await result
            except _Unsupported:
                return await _maybe_await(self, super(CompiledExecutor, self).execute_operation())

        return settle()

    async def _checked(self, plan: Plan, serially: bool | None) -> Any:
        """Both paths; the compiled answer, any difference recorded in MISMATCHES."""
        compiled = await _maybe_await(self, self._compiled_or_standard(plan, serially))
        token = SHADOW_RUN.set(True)
        try:
            twin = _fresh_copy(self)
            standard = await _maybe_await(
                self, SharedEventExecutor.execute_operation(twin, serially)
            )
        finally:
            SHADOW_RUN.reset(token)
        if _describe(compiled) != _describe(standard):
            body = self.operation.loc.source.body if self.operation.loc else "?"
            message = (
                f"compiled execution differs from graphql-core's for {body!r}:\n"
                f"compiled: {_describe(compiled)}\nstandard: {_describe(standard)}"
            )
            log.error(message)
            if len(MISMATCHES) < MAX_MISMATCHES:
                MISMATCHES.append(message)
        return compiled


async def _maybe_await(executor: Any, value: Any) -> Any:
    if executor.is_awaitable(value):
        return await value
    return value
