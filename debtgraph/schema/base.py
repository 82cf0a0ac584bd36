"""Shared GraphQL plumbing: the context accessor, user errors, error masking and cursors."""

from __future__ import annotations

import dataclasses
import decimal
import enum
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

import strawberry
from graphql.error import GraphQLError
from strawberry import relay
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import MaskErrors
from strawberry.types import Info
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.utils.str_converters import to_camel_case

from debtgraph.domain.core.database import UNAVAILABLE_MESSAGE, is_unavailable
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import (
    DomainValidationError,
    ExpectedError,
    FieldError,
    NotFound,
    OperatorOnly,
    Unauthenticated,
)
from debtgraph.resolvers.json_limits import MAX_JSON_DEPTH, json_depth_exceeds
from debtgraph.resolvers.loaders import Page
from debtgraph.resolvers.pagination import IdRef, db_id, encode_cursor, parse_id
from debtgraph.schema.limits import code_request_errors, limits_of

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


# A snake_case name in a domain field path or message: ``issue_date``, ``force_proceed``.
_SNAKE_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
# For each input field or argument name of the graph, the names it sits beside (the other
# fields of its input types, the other arguments of its fields): a message about a field quotes
# its siblings ("invoice.amount must equal amount_before_tax + tax_amount"), whose names are
# translated with it; any other snake_case word in a message (a CSV column, a status value such
# as ``pending_kyb``) is data and stays as it is. Filled by register_input_names.
_SIBLINGS: dict[str, set[str]] = {}


def register_input_names(schema: strawberry.Schema) -> None:
    """Learn the Python names of every input field and argument of ``schema`` (once built)."""
    groups: list[set[str]] = []
    for type_def in schema.schema_converter.type_map.values():
        definition = type_def.definition
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        if definition.is_input:
            groups.append({f.python_name for f in definition.fields})
        groups.extend({a.python_name for a in f.arguments} for f in definition.fields)
    for group in groups:
        for name in group:
            _SIBLINGS.setdefault(name, set()).update(group)


def graphql_name(name: str) -> str:
    """The GraphQL input's spelling of a domain (REST) field path, by Strawberry's own rule.

    Strawberry camel-cases every Python field name of an input (``issue_date`` → ``issueDate``);
    the domain names fields by those Python names, so one rule maps any path:
    ``invoice.issue_date`` → ``invoice.issueDate``, ``debtor.contacts[0].email`` unchanged,
    ``force_proceed`` → ``forceProceed``.
    """
    return _SNAKE_NAME.sub(lambda m: to_camel_case(m.group(0)), name)


def graphql_message(message: str, field: str) -> str:
    """A domain message about ``field`` with the input names it quotes in their GraphQL spelling.

    Translated: the names along ``field``'s path and the names beside each of them
    (``force_proceed`` beside ``invoice`` in "invoice.due_date …; send force_proceed: true").
    """
    segments = [re.sub(r"\[\d+\]$", "", part) for part in field.split(".") if part]
    names = set(segments).union(*(_SIBLINGS.get(segment, set()) for segment in segments))
    return _SNAKE_NAME.sub(
        lambda m: to_camel_case(m.group(0)) if m.group(0) in names else m.group(0), message
    )


def graphql_field_error(error: FieldError) -> FieldError:
    """A domain field error as a GraphQL client reads it: path and message in its names."""
    return FieldError(
        graphql_name(error.field), error.code, graphql_message(error.message, error.field)
    )


def user_errors(exc: Exception) -> list[UserError]:
    """The userErrors for an expected failure; unexpected ones are re-raised by the caller."""
    if isinstance(exc, DomainValidationError):
        return [
            UserError(field=e.field or None, code=e.code, message=e.message)
            for e in map(graphql_field_error, exc.errors)
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
    except OperatorOnly as exc:
        # A signed-in caller that is not an operator: the mutation's own refusal, in its payload.
        return None, user_errors(exc)
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
        code_request_errors(errors)
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
                    "errors": [graphql_field_error(e).as_dict() for e in original.errors],
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


# A decimal in the syntax of a JSON number (ASCII digits, sign, fraction, exponent; "1." and ".5"
# too). Strawberry's Decimal scalar read any text Python's Decimal reads: "1_000" as 1000,
# full-width digits, surrounding spaces, "NaN" and "Infinity". What the number may be (its
# range, its decimals) is each field's own rule, answered as that field's user error.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def _parse_decimal(value: object) -> decimal.Decimal:
    # Strawberry's coercion error, which graphql-core reports as the value's own error for a
    # variable and a literal alike (any other exception in a literal is masked as a crash).
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = repr(value)  # a JSON number of the variables (a float's shortest repr is exact)
    elif isinstance(value, str):
        text = value
    else:
        raise StrawberryInputCoercionError(
            f'Value cannot represent a Decimal: "{value}". Expected a string.'
        )
    if not _DECIMAL_TEXT.fullmatch(text):
        raise StrawberryInputCoercionError(
            f"Value cannot represent a Decimal: {text[:40]!r}. Expected a number in ASCII "
            'digits (a sign, a decimal point and an exponent allowed), such as "1250.50".'
        )
    return decimal.Decimal(text)


DECIMAL_SCALAR = strawberry.scalar(
    name="Decimal",
    description="Decimal (fixed-point)",
    serialize=str,
    parse_value=_parse_decimal,
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


@strawberry.type(description="A page of nodes in the list's order (at most 100 per page).")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo
    total_count: int


class _Edges(Sequence[Edge[T]]):
    """A connection's edges, built when first read: most pages are asked for their nodes only,
    and a nested page of 100 parents would otherwise encode a cursor per child it never shows."""

    __slots__ = ("_built", "_items", "_nodes")

    def __init__(self, items: list[Any], nodes: list[T]) -> None:
        self._items = items
        self._nodes = nodes
        self._built: list[Edge[T]] | None = None

    def _edges(self) -> list[Edge[T]]:
        if self._built is None:
            self._built = [
                Edge(cursor=encode_cursor(item.id), node=node)
                for item, node in zip(self._items, self._nodes, strict=True)
            ]
        return self._built

    @overload
    def __getitem__(self, index: int) -> Edge[T]: ...

    @overload
    def __getitem__(self, index: slice) -> list[Edge[T]]: ...

    def __getitem__(self, index: int | slice) -> Edge[T] | list[Edge[T]]:
        return self._edges()[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Edge[T]]:
        return iter(self._edges())

    def __repr__(self) -> str:
        return repr(self._edges())


class _PageInfo(PageInfo):
    """A page's PageInfo whose cursors are encoded when read, as its edges' are (_Edges): a
    nested page of 100 parents builds a connection per parent, and few queries ask for them.

    The cursors are properties, so both executors read them with the ``getattr`` they read any
    other field with, and see the same values."""

    def __init__(self, page: Page[Any]) -> None:
        # Not PageInfo's own fields: the page, whose cursors are encoded when read.
        self.has_next_page = page.has_next
        self.has_previous_page = page.has_previous
        self._items = page.items

    @property
    def start_cursor(self) -> str | None:  # type: ignore[override]
        items = self._items
        return encode_cursor(items[0].id) if items else None

    @property
    def end_cursor(self) -> str | None:  # type: ignore[override]
        items = self._items
        return encode_cursor(items[-1].id) if items else None


def to_connection(page: Page[Any], convert: Callable[[Any], T]) -> Connection[T]:
    """Shape a resolver page into a Relay connection."""
    return _connection(page, [convert(item) for item in page.items])


def _connection(page: Page[Any], nodes: list[T]) -> Connection[T]:
    # Its four fields set at once: a nested page builds a connection per parent, and the
    # dataclass's keyword __init__ costs more than the rest of it (its __init__ only assigns
    # them; tests/unit/test_row_shapes.py holds the two equal).
    connection: Connection[T] = object.__new__(Connection)
    connection.__dict__.update(
        edges=_Edges(page.items, nodes),
        nodes=nodes,
        page_info=_PageInfo(page),
        total_count=page.total,
    )
    return connection


# A field of a RowShape: the column it shows as it is, or a function and the columns it is
# applied to, in order.
ShapeField = str | tuple[Any, ...]


class RowShape(Generic[T]):
    """How a node type is built from the named columns of a row: each field the column it shows
    (the column of its own name unless the shape says another; a Relay node's id its row id) or a
    function of columns. The one rule that builds the type, from a page of Core rows (by
    position, see :meth:`build_all`) and from an entity (its attributes by name, EntityFields).

    The constructors are generated once, as code reading each column once and calling each
    function once: a nested page builds some hundreds of nodes per request, and a hand-written
    ``cls(**…)`` of mapping look-ups and enum calls costs several times what the rows do. An
    enumeration is looked up in its members by value (what calling it answers, without the
    call); a value that is no member goes through the call, which raises as it did.
    """

    def __init__(self, node: type[T], fields: Mapping[str, ShapeField]) -> None:
        self.node = node
        declared = [f.name for f in dataclasses.fields(node) if f.init]  # type: ignore[arg-type]
        unknown = sorted(set(fields) - set(declared))
        if unknown:
            raise TypeError(f"{node.__name__}'s row shape names {unknown}, none of its fields")
        # A field the shape does not name shows the column of its own name; a Relay node's
        # ``id`` is its row id as text and its ``database_id`` the row id itself.
        defaults: dict[str, ShapeField] = {name: name for name in declared}
        if issubclass(node, relay.Node):
            defaults.update({"id": (str, "id"), "database_id": "id"})
        self.fields: dict[str, ShapeField] = {
            name: fields.get(name, defaults[name]) for name in declared
        }
        self.columns = tuple(
            dict.fromkeys(
                column
                for spec in self.fields.values()
                for column in ((spec,) if isinstance(spec, str) else spec[1:])
            )
        )
        self.from_mapping: Callable[[Mapping[str, Any]], T] = self._generate(
            lambda column: f"m[{column!r}]", "m"
        )
        self._by_position: dict[tuple[str, ...], Callable[[Any], T]] = {}
        # The last result's metadata (a sentinel first) and its constructor (see build_all).
        self._last: tuple[object, Callable[[Any], T]] = (object(), self.from_mapping)
        _SHAPES[node] = self

    def fields_code(
        self, read: Callable[[str], str], prefix: str = ""
    ) -> tuple[list[str], dict[str, Any], dict[str, str]]:
        """The statements that compute every field of a node into a local, as its constructor
        does (each column read once; each function called once, in the fields' order), the
        names they use, and each field's local (by field name). The compiled executor reads a
        row's fields from these without building the node (schema/compiled.py); ``prefix``
        keeps the names apart from its own."""
        env: dict[str, Any] = {}
        local = {column: f"{prefix}c{n}" for n, column in enumerate(self.columns)}
        lines = [f"{local[column]} = {read(column)}" for column in self.columns]
        values: dict[str, str] = {}
        for n, (name, spec) in enumerate(self.fields.items()):
            if isinstance(spec, str):
                values[name] = local[spec]
                continue
            function, *columns = spec
            env[f"{prefix}f{n}"] = function
            call = f"{prefix}f{n}({', '.join(local[c] for c in columns)})"
            value = values[name] = f"{prefix}v{n}"
            if isinstance(function, type) and issubclass(function, enum.Enum) and len(columns) == 1:
                env[f"{prefix}e{n}"] = function._value2member_map_
                lines.append(f"{value} = {prefix}e{n}.get({local[columns[0]]})")
                lines.append(f"if {value} is None: {value} = {call}")
            else:
                lines.append(f"{value} = {call}")
        return lines, env, values

    def _generate(self, read: Callable[[str], str], arg: str) -> Callable[[Any], T]:
        lines, env, values = self.fields_code(read)
        env.update(new=object.__new__, node=self.node)
        items = ", ".join(f"{name!r}: {value}" for name, value in values.items())
        # The dataclass's __init__ only assigns these fields (every one given): the instance's
        # __dict__ is set at once instead (tests/unit/test_row_shapes.py holds both equal).
        lines += ["o = new(node)", "o.__dict__.update({" + items + "})", "return o"]
        source = f"def build({arg}):\n" + "\n".join(f"    {line}" for line in lines)
        exec(source, env)  # noqa: S102 - generated from the shape's own names only
        return env["build"]  # type: ignore[no-any-return]

    def positions(self, row: Any) -> dict[str, int] | None:
        """Each column's position in rows laid out as ``row``, or None when they are not all
        there by name (an unnamed column: such rows are read by name)."""
        fields = row._fields
        if len(fields) != len(row):
            return None
        positions = {name: index for index, name in enumerate(fields)}
        missing = [column for column in self.columns if column not in positions]
        if missing:
            raise KeyError(f"{self.node.__name__} rows lack {missing}")
        return positions

    def build_all(self, rows: Sequence[Any]) -> list[T]:
        """The nodes of Core rows of one result (their columns by position, found once per
        result: rows of several results go to :meth:`build_each`)."""
        if not rows:
            return []
        # The rows of one result share its metadata: a nested page builds a connection per
        # parent from one result, and asking a row its fields builds their list anew each time.
        # (``_parent`` is SQLAlchemy's, absent from other rows: their fields are asked.)
        metadata = getattr(rows[0], "_parent", None)
        last = self._last
        if metadata is not None and last[0] is metadata:
            build = last[1]
        else:
            build = self._positional(rows[0])
            if metadata is not None:
                self._last = (metadata, build)
        return [build(row) for row in rows]

    def build_each(self, rows: Sequence[Any]) -> list[T]:
        """The nodes of Core rows of any results, each read by its own columns."""
        return [self._positional(row)(row) for row in rows]

    def _positional(self, row: Any) -> Callable[[Any], T]:
        """The constructor reading rows laid out as ``row`` by position."""
        fields = row._fields
        if len(fields) != len(row):
            return lambda r: self.from_mapping(r._mapping)  # an unnamed column: by name
        found = self._by_position.get(fields)
        if found is not None:
            return found
        positions = self.positions(row)
        assert positions is not None
        build = self._generate(lambda column: f"r[{positions[column]}]", "r")
        if len(self._by_position) >= 16:  # a statement's columns: a handful per type
            del self._by_position[next(iter(self._by_position))]
        self._by_position[fields] = build
        return build


# Each node type's shape, for the modules that name the type through the schema (schema_type).
_SHAPES: dict[type, RowShape[Any]] = {}


def shape_of(node: type[T]) -> RowShape[T]:
    """The row shape of a node type."""
    return _SHAPES[node]


def none_if_empty(value: Any) -> Any:
    """An empty list (or string) shown as null, as the REST faces show it."""
    return value or None


class RowsConnection(Connection[T]):
    """A page of Core rows as a Relay connection of a shape's nodes, built when first read.

    The compiled executor answers a connection's ``nodes`` from the rows themselves when it
    can (schema/compiled.py): each selected field computed from its columns as the node's
    constructor computes it, without the node. Everything else reads the connection as any
    other: its nodes, edges and page info are built on their first read, through properties
    both executors read with the ``getattr`` they read any field with. So a row its shape cannot
    build fails the connection's ``nodes`` and ``edges`` alone (PRODUCT-DECISIONS.md, "A row
    that cannot be shown"). Its nodes are not settable, and it is no dataclass to replace or
    compare: it is answered, never built upon.
    """

    def __init__(self, page: Page[Any], shape: RowShape[T]) -> None:
        # Not Connection's own fields: the page and shape they are built from.
        self.total_count = page.total
        self.page = page
        self.shape = shape
        self._nodes: list[T] | None = None
        self._edges: _Edges[T] | None = None

    @property
    def built(self) -> bool:
        """Whether its nodes were built (and so are what it answers)."""
        return self._nodes is not None

    @property
    def nodes(self) -> list[T]:  # type: ignore[override]
        if self._nodes is None:
            self._nodes = self.shape.build_all(self.page.items)
        return self._nodes

    @property
    def edges(self) -> _Edges[T]:  # type: ignore[override]
        if self._edges is None:
            self._edges = _Edges(self.page.items, self.nodes)
        return self._edges

    @property
    def page_info(self) -> _PageInfo:  # type: ignore[override]
        return _PageInfo(self.page)  # its cursors are read from the page itself


def rows_connection(page: Page[Any], shape: RowShape[T]) -> Connection[T]:
    """A page of Core rows as a Relay connection of the shape's nodes (RowsConnection)."""
    return RowsConnection(page, shape)


class EntityFields(Mapping[str, Any]):
    """An entity as the mapping of its attributes by name, the shape of a row of named columns
    (``Row._mapping``): a node type's ``from_row`` is the one rule that shapes both."""

    __slots__ = ("_entity",)

    def __init__(self, entity: object) -> None:
        self._entity = entity

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self._entity, key)
        except AttributeError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        raise TypeError("an entity's attributes are read by name only")

    def __len__(self) -> int:
        raise TypeError("an entity's attributes are read by name only")


# The metadata key of a field's resolver for many parents (see ``batched``).
BATCH = "debtgraph.batch"


def batched(many: Callable[..., Awaitable[list[Any]]]) -> dict[str, Any]:
    """The metadata of a field whose resolver also answers for many parents in one call.

    ``many(info, parents, **arguments)`` answers, in the parents' order, each parent's value or
    the exception that parent's field fails with. The field's own resolver must be ``many`` for
    one parent (so the rule stays in one place); the compiled executor calls ``many`` once for
    all the objects of a list (schema/compiled.py) instead of the resolver once per object.
    """
    return {BATCH: many}


async def one_of(answers: Awaitable[list[T | Exception]]) -> T:
    """The one answer of a ``batched`` resolver called for one parent."""
    (answer,) = await answers
    if isinstance(answer, Exception):
        raise answer
    return answer


def global_id_of(value: str | relay.GlobalID) -> relay.GlobalID | None:
    """The global id an ``ID`` argument spells, or None for text that is none (a REST id)."""
    if isinstance(value, relay.GlobalID):
        return value
    try:
        return relay.GlobalID.from_id(value)
    except Exception:
        return None


def object_id(value: str | relay.GlobalID, type_name: str) -> str:
    """The REST id of a ``type_name`` object named by its Relay global id or its REST id.

    The one reading of an id argument: every root field and mutation input that names an object
    takes either spelling. A global id of another type names nothing of this one: NotFound.
    """
    global_id = global_id_of(value)
    if global_id is None:
        return str(value)  # the REST id itself (rcv_…, usr_…, or digits)
    if global_id.type_name != type_name:
        raise NotFound(type_name)
    return global_id.node_id


def id_ref(value: str | relay.GlobalID, type_name: str) -> IdRef:
    """The REST id of a ``type_name`` object, read when the use case asks for it: after its
    permission check, so that a caller refused learns nothing of the id's form (NotFound for
    another type's global id) first (resolvers.pagination.IdRef)."""
    return functools.partial(object_id, value, type_name)


def node_key(value: str | relay.GlobalID | None, type_name: str) -> int | None:
    """The numeric id of a ``type_name`` object named by either id (NotFound for any other)."""
    if value is None:
        return None
    return parse_id(object_id(value, type_name), type_name)


def filter_id(value: str | relay.GlobalID | None, type_name: str) -> str | None:
    """The REST id a list filter argument names (``uploadId`` of ``debtors``), unchecked.

    A list filter takes the REST face's rule for its value (resolvers.pagination.id_filter): an
    unknown or negative id is an empty list, text that is no integer the field's input error.
    Read as a node key instead, those were "Upload not found." on this face alone.
    """
    return None if value is None else object_id(value, type_name)


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
