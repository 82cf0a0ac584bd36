"""The GraphQL limits of PRODUCT.md §12, checked on the parsed document before anything runs.

One linear walk measures depth, aliases, cost, ``nodes`` ids and nesting, and finds NUL characters
in arguments. It runs before graphql-core's validation and, when a limit is exceeded, replaces it:
some of those rules recurse along fragment spreads (a long chain overflows Python's stack) and
Strawberry's depth and alias limiters walk a fragment once per path that reaches it (exponential
in a document whose fragments each spread the next one twice). Here every fragment is measured
once per binding of the variables it reads and its figures reused wherever it is spread, and
nesting is capped before anything recurses past it. Every operation is measured with its own
variable definitions, as graphql-core runs it, and the document is refused if any one is over.

What a walk finds (a :class:`Verdict`) depends on the document, the schema and, of the request's
variables, only on the page sizes and ``nodes`` ids it read: it is kept with a document the
cache keeps (schema/caches.py), by those readings, and a request that reads the same is not
walked again. The limits and the NUL check of the variables are applied to it per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    get_nullable_type,
    type_from_ast,
)
from graphql.language import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NamedTypeNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    print_ast,
)
from graphql.validation import validation_context
from graphql.validation.rules import overlapping_fields_can_be_merged
from strawberry.extensions import SchemaExtension
from strawberry.relay.utils import from_base64

from debtgraph.domain.core.errors import INVALID_CHARACTER
from debtgraph.resolvers.loaders import MAX_PAGE
from debtgraph.resolvers.pagination import page_size_error
from debtgraph.schema.caches import DOCUMENTS

# Fields, inline fragments and fragment spreads together: deep enough for any real query at the
# default depth, shallow enough that graphql-core's recursive rules stay far from the stack limit.
MAX_NESTING = 64
# What a connection returns when neither first nor last is given (resolvers' check_first default).
DEFAULT_PAGE_SIZE = 20
TOO_COMPLEX = "QUERY_TOO_COMPLEX"
# A fragment is measured once per binding of the variables it reads; operations that each give
# those variables a different default would otherwise cost operations x fragments (quadratic in
# the document's tokens). A 5,000-token document has at most about 700 fragments, so an honest one
# measured under a few bindings stays far below.
MAX_FRAGMENT_MEASURES = 2000
# Bounds the parser's work (Strawberry's MaxTokensLimiter, installed by build.py).
MAX_TOKENS = 5000
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
# Verdicts kept per cached document: a dashboard's few page sizes, not one per value an
# attacker can send (the rest are walked, as a document the cache does not keep).
MAX_VERDICTS = 16
# What a kept verdict costs the document cache, in text bytes' worth (its budget's unit, see
# compiled.FIELD_PLAN_WEIGHT). Measured: ~0.7 KB, and ~0.6 KB more for each operation or
# declared variable (their figures, defaults and types); charged at 50 bytes a text byte.
VERDICT_WEIGHT = 16
PART_WEIGHT = 12


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits one request is held to (from Settings)."""

    max_depth: int = 12
    max_aliases: int = 100
    max_cost: int = 10_000
    max_nodes: int = 100
    allow_introspection: bool = True
    # Why introspection is refused, when it is (GRAPHQL_INTROSPECTION, or signing in).
    introspection_refusal: str = ""


@dataclass(frozen=True, slots=True)
class _Measure:
    """Figures of a selection set, relative to where it is used."""

    depth: int = 0  # fields nested below, as QueryDepthLimiter counts them
    nesting: int = 0  # fields and fragments nested below
    aliases: int = 0
    cost: int = 0  # for one instance of the parent; a connection above multiplies it

    def __add__(self, other: _Measure) -> _Measure:
        return _Measure(
            max(self.depth, other.depth),
            max(self.nesting, other.nesting),
            self.aliases + other.aliases,
            self.cost + other.cost,
        )


def limit_error(message: str, limit: str, maximum: int) -> GraphQLError:
    """A refusal naming the limit and its value."""
    return GraphQLError(message, extensions={"code": TOO_COMPLEX, "limit": limit, "max": maximum})


def nul_error(field: str) -> GraphQLError:
    """A refusal of a NUL character in an argument (PostgreSQL cannot store one)."""
    message = f"The {field} argument must not contain NUL characters."
    return GraphQLError(
        message,
        extensions={
            "code": "BAD_USER_INPUT",
            "errors": [{"field": field, "code": INVALID_CHARACTER, "message": message}],
        },
    )


class _Walk:
    """One pass over a document; each fragment measured once per binding of its variables."""

    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.operations = [
            d for d in document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        # graphql-core runs an operation with its own variable definitions, so each operation is
        # measured with its own defaults and types (begin), never another operation's.
        self.defaults: dict[str, ValueNode] = {}
        self.default_keys: dict[str, str] = {}
        self.variable_types: dict[str, Any] = {}
        # Every type a variable is declared with, for the NUL check of the request's variables.
        self.declared_types: dict[str, dict[str, Any]] = {}
        self.operation_defaults: list[tuple[dict[str, ValueNode], dict[str, Any]]] = []
        # A fragment's figures depend on the operation only through the variables it reads: they
        # are cached per fragment and the bindings of those variables, so a fragment is measured
        # once per distinct binding rather than once per path (fragment_vars is known after the
        # first measurement; frames collects the variables read while a fragment is measured).
        self.measured: dict[tuple[str, tuple[tuple[str, str | None], ...]], _Measure] = {}
        self.fragment_vars: dict[str, tuple[str, ...]] = {}
        self.frames: list[set[str]] = []
        self.measuring: set[str] = set()
        self.too_nested = False
        self.too_many_measures = False
        self.introspection = False
        self.nodes_ids = 0  # the largest nodes(ids:) of the document
        self.oversized_pages: list[str] = []  # first/last arguments over MAX_PAGE
        self.nul_fields: list[str] = []
        self.variable_uses: dict[str, str] = {}  # variable -> the argument it is passed to
        # Every variable the walk read and how (_READINGS): with the document, all a verdict
        # depends on.
        self.reads: dict[str, set[str]] = {}

    # --- selections ------------------------------------------------------------------------

    def selection_set(
        self, node: SelectionSetNode | None, parent: GraphQLNamedType | None, level: int
    ) -> _Measure:
        total = _Measure()
        if node is None:
            return total
        if level > MAX_NESTING:
            self.too_nested = True
            return total
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, level)
            elif isinstance(selection, InlineFragmentNode):
                self.directives(selection.directives)
                inner = self.selection_set(
                    selection.selection_set,
                    self.type_of(selection.type_condition, parent),
                    level + 1,
                )
                total += _Measure(inner.depth, inner.nesting + 1, inner.aliases, inner.cost)
            elif isinstance(selection, FragmentSpreadNode):
                self.directives(selection.directives)
                inner = self.fragment(selection.name.value, level + 1)
                total += _Measure(inner.depth, inner.nesting + 1, inner.aliases, inner.cost)
        return total

    def begin(self, operation: OperationDefinitionNode) -> None:
        """Measure what follows with this operation's variable defaults and types."""
        self.defaults = {}
        self.variable_types = {}
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            type_ = type_from_ast(self.schema, definition.type)
            self.variable_types.setdefault(name, type_)
            self.declared_types.setdefault(name, {}).setdefault(str(type_), type_)
            if definition.default_value is not None:
                self.defaults.setdefault(name, definition.default_value)
        self.default_keys = {name: print_ast(value) for name, value in self.defaults.items()}
        self.operation_defaults.append((self.defaults, self.variable_types))

    def binding(self, variables: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
        # The request's variables are the same for every operation; only defaults differ.
        return tuple(
            (name, self.default_keys.get(name)) for name in variables if name not in self.variables
        )

    def fragment(self, name: str, level: int) -> _Measure:
        used = self.fragment_vars.get(name)
        if used is not None:
            found = self.measured.get((name, self.binding(used)))
            if found is not None:
                if level + found.nesting > MAX_NESTING:
                    self.too_nested = True
                if self.frames:
                    self.frames[-1].update(used)
                return found
        definition = self.fragments.get(name)
        if definition is None or name in self.measuring:
            # Unknown fragments and cycles are graphql-core's to report, now that it cannot
            # recurse far.
            return _Measure()
        if len(self.measured) >= MAX_FRAGMENT_MEASURES:
            self.too_many_measures = True
            return _Measure()
        self.measuring.add(name)
        self.frames.append(set())
        self.directives(definition.directives)
        measure = self.selection_set(
            definition.selection_set, self.type_of(definition.type_condition, None), level
        )
        read = self.frames.pop()
        self.measuring.discard(name)
        if self.frames:
            self.frames[-1].update(read)
        self.fragment_vars[name] = tuple(sorted(read))
        self.measured[(name, self.binding(self.fragment_vars[name]))] = measure
        return measure

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, level: int) -> _Measure:
        name = node.name.value
        definition = None
        if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            definition = parent.fields.get(name)
        self.arguments(node.arguments, definition.args if definition is not None else {})
        self.directives(node.directives)
        alias = 1 if node.alias else 0
        if name.startswith("__"):
            # Introspection is metadata: outside depth and cost, as QueryDepthLimiter has it.
            self.introspection = self.introspection or name in INTROSPECTION_FIELDS
            inner = self.selection_set(node.selection_set, None, level + 1)
            return _Measure(0, inner.nesting + 1, alias + inner.aliases, 0)
        child = get_named_type(definition.type) if definition is not None else None
        inner = self.selection_set(node.selection_set, child, level + 1)
        count = self.count(node, definition, parent)
        if node.selection_set is None:
            return _Measure(0, 0, alias, count or 0)
        return _Measure(
            1 + inner.depth,
            1 + inner.nesting,
            alias + inner.aliases,
            (count or 0) + (1 if count is None else count) * inner.cost,
        )

    def type_of(
        self, condition: NamedTypeNode | None, parent: GraphQLNamedType | None
    ) -> GraphQLNamedType | None:
        if condition is None:
            return parent
        return self.schema.get_type(condition.name.value)

    # --- cost --------------------------------------------------------------------------------

    def count(
        self, node: FieldNode, definition: GraphQLField | None, parent: GraphQLNamedType | None
    ) -> int | None:
        """How many objects the field returns when it is paged (None when it is not)."""
        if definition is None:
            return None
        if (
            parent is self.schema.query_type
            and node.name.value == "nodes"
            and "ids" in definition.args
        ):
            ids = self.argument_length(node, "ids")
            self.nodes_ids = max(self.nodes_ids, ids)
            return ids
        names = [name for name in ("first", "last") if name in definition.args]
        if not names:
            return None
        sizes = [self.int_argument(node, name) for name in names]
        # The resolvers refuse these too, but only once a page is being read; refused here,
        # first: 100000 is the page-size error it is rather than a cost.
        self.oversized_pages.extend(
            name for name, size in zip(names, sizes, strict=True) if (size or 0) > MAX_PAGE
        )
        given = [size for size in sizes if size is not None]
        return max(0, max(given)) if given else DEFAULT_PAGE_SIZE

    def argument_value(self, node: FieldNode, name: str, reading: str) -> tuple[bool, Any]:
        """The argument as the client gave it: a literal, a variable's value or its default."""
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if not isinstance(value, VariableNode):
                return True, value
            variable = value.name.value
            if self.frames:
                self.frames[-1].add(variable)
            self.reads.setdefault(variable, set()).add(reading)
            if variable in self.variables:
                return True, self.variables[variable]
            default = self.defaults.get(variable)
            return default is not None, default
        return False, None

    def int_argument(self, node: FieldNode, name: str) -> int | None:
        return _as_int(*self.argument_value(node, name, "int"))

    def argument_length(self, node: FieldNode, name: str) -> int:
        return _as_length(*self.argument_value(node, name, "length"))

    # --- NUL characters ----------------------------------------------------------------------

    def directives(self, directives: tuple[DirectiveNode, ...] | None) -> None:
        for directive in directives or ():
            known = self.schema.get_directive(directive.name.value)
            self.arguments(directive.arguments, known.args if known is not None else {})

    def arguments(
        self, arguments: tuple[ArgumentNode, ...] | None, definitions: Mapping[str, GraphQLArgument]
    ) -> None:
        for argument in arguments or ():
            name = argument.name.value
            known = definitions.get(name)
            self.value(argument.value, name, known.type if known is not None else None)

    def value(self, node: ValueNode, path: str, type_: GraphQLInputType | None) -> None:
        _literal_nuls(node, path, type_, self.nul_fields, self.variable_uses)

    def verdict(self, measures: tuple[tuple[str, _Measure], ...]) -> Verdict:
        refusal = "nesting" if self.too_nested else None
        if refusal is None and self.too_many_measures:
            refusal = "fragments"
        return Verdict(
            refusal=refusal,
            measures=measures,
            introspection=self.introspection,
            nodes_ids=self.nodes_ids,
            oversized_pages=tuple(dict.fromkeys(self.oversized_pages)),
            nuls=_Nuls(
                literal=tuple(self.nul_fields),
                operation_defaults=tuple(self.operation_defaults),
                variable_uses=self.variable_uses,
                declared_types=self.declared_types,
            ),
            readings=tuple(sorted((name, tuple(sorted(how))) for name, how in self.reads.items())),
        )


def _as_int(found: bool, value: Any) -> int | None:
    """A page size as the walk reads it (None: not an Int, the resolvers' default applies)."""
    if isinstance(value, IntValueNode):
        return int(value.value)
    if found and isinstance(value, int) and not isinstance(value, bool):
        return value
    if found and isinstance(value, float) and value.is_integer():
        return int(value)  # graphql-core reads 100.0 as the Int 100
    return None


def _as_length(found: bool, value: Any) -> int:
    """How many ids a ``nodes(ids:)`` argument gives."""
    if not found or value is None:
        return 0
    if isinstance(value, ListValueNode):
        return len(value.values)
    if isinstance(value, list):
        return len(value)
    return 1  # a single value is coerced to a list of one


# How the walk reads a variable's value: all a verdict knows of it.
_READINGS: dict[str, Callable[[bool, Any], int | None]] = {"int": _as_int, "length": _as_length}


def _literal_nuls(
    node: ValueNode,
    path: str,
    type_: GraphQLInputType | None,
    found: list[str],
    uses: dict[str, str] | None = None,
) -> None:
    # Literal values nest no deeper than the parser allows, far from the stack limit.
    if isinstance(node, StringValueNode):
        if _has_nul(node.value, type_):
            found.append(path)
    elif isinstance(node, VariableNode):
        if uses is not None:
            uses.setdefault(node.name.value, path)
    elif isinstance(node, ListValueNode):
        for item in node.values:
            _literal_nuls(item, path, _item_type(type_), found, uses)
    elif isinstance(node, ObjectValueNode):
        for entry in node.fields:
            name = entry.name.value
            _literal_nuls(entry.value, f"{path}.{name}", _field_type(type_, name), found, uses)


@dataclass(frozen=True, slots=True)
class _Nuls:
    """What the NUL check needs of a document: its literals' NULs, found once, and how the
    request's variables reach arguments (the variables themselves are checked per request)."""

    literal: tuple[str, ...]
    operation_defaults: tuple[tuple[dict[str, ValueNode], dict[str, Any]], ...]
    variable_uses: Mapping[str, str]
    declared_types: Mapping[str, Mapping[str, Any]]

    def fields(self, variables: Mapping[str, Any]) -> list[str]:
        """The arguments given a NUL character, each named once, in the document's order."""
        found = [*self.literal]
        for defaults, types in self.operation_defaults:
            for variable, default in defaults.items():
                if variable not in variables:
                    path = self.variable_uses.get(variable, f"${variable}")
                    _literal_nuls(default, path, types.get(variable), found)
        found.extend(self._in_variables(variables))
        return list(dict.fromkeys(found))

    def _in_variables(self, variables: Mapping[str, Any]) -> Iterator[str]:
        """Where NUL characters are in the variables, named by the argument they are passed to."""
        # Iterative: variables are JSON of any depth. Checked against every type a variable is
        # declared with: the operation that runs may be any of them.
        stack: list[tuple[Any, str, Any]] = [
            (value, self.variable_uses.get(name, f"${name}"), type_)
            for name, value in reversed(list(variables.items()))
            for type_ in (list(self.declared_types.get(name, {}).values()) or [None])
        ]
        while stack:
            value, path, type_ = stack.pop()
            if isinstance(value, str):
                if _has_nul(value, type_):
                    yield path
            elif isinstance(value, dict):
                for key, item in reversed(list(value.items())):
                    if "\x00" in str(key):
                        yield path
                    else:
                        stack.append((item, f"{path}.{key}", _field_type(type_, str(key))))
            elif isinstance(value, list):
                item_type = _item_type(type_)
                stack.extend((item, path, item_type) for item in reversed(value))


def _has_nul(value: str, type_: GraphQLInputType | None) -> bool:
    """NUL in the text, or in the public id a Relay global ID carries (base64 hides it)."""
    if "\x00" in value:
        return True
    if type_ is not None and get_named_type(type_) is GraphQLID:
        try:
            type_name, node_id = from_base64(value)
        except ValueError:
            return False  # not a global id: the field's own parsing refuses it
        return "\x00" in type_name or "\x00" in node_id
    return False


def _item_type(type_: GraphQLInputType | None) -> GraphQLInputType | None:
    nullable = get_nullable_type(type_) if type_ is not None else None
    return nullable.of_type if isinstance(nullable, GraphQLList) else nullable


def _field_type(type_: GraphQLInputType | None, name: str) -> GraphQLInputType | None:
    named = get_named_type(type_) if type_ is not None else None
    if isinstance(named, GraphQLInputObjectType) and name in named.fields:
        return named.fields[name].type
    return None


def judge(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None
) -> Verdict:
    """Walk the document once: what the limits are then held against."""
    walk = _Walk(schema, document, variables or {})
    for name in walk.fragments:
        walk.fragment(name, 1)
    measures: list[tuple[str, _Measure]] = []
    for operation in walk.operations:
        walk.begin(operation)
        walk.directives(operation.directives)
        root = schema.get_root_type(operation.operation)
        name = operation.name.value if operation.name else "anonymous"
        measures.append((name, walk.selection_set(operation.selection_set, root, 1)))
    return walk.verdict(tuple(measures))


Readings = tuple[tuple[str, tuple[str, ...]], ...]  # variables, each with how it was read


def _key(readings: Readings, variables: Mapping[str, Any]) -> tuple[Any, ...]:
    # None: the variable is absent (the walk then read its default, and fragments measured
    # under it are keyed by that).
    return tuple(
        tuple(_READINGS[how](True, variables[name]) for how in ways) if name in variables else None
        for name, ways in readings
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one walk of a document found, the limits not yet applied (they are per caller).

    Depends on the variables only through :attr:`readings` (:meth:`key`): another request of
    the same document whose variables read the same gets the same verdict. Holds no error
    object: each request is given its own (graphql-core and the extensions edit them).
    """

    refusal: str | None  # "nesting" or "fragments": refused before anything else is looked at
    measures: tuple[tuple[str, _Measure], ...]  # each operation's name and figures
    introspection: bool
    nodes_ids: int  # the largest nodes(ids:)
    oversized_pages: tuple[str, ...]  # first/last arguments over MAX_PAGE, each once
    nuls: _Nuls
    # The variables the walk read, each with how it read them (_READINGS).
    readings: Readings

    def key(self, variables: Mapping[str, Any]) -> tuple[Any, ...]:
        """What these variables read where the walk read its own (equal: the same verdict).

        The walk's only use of a variable's value is what _READINGS make of it, and its only
        other look at the variables is whether one is given: a request agreeing on both at
        every variable the walk read takes the walk along the same path to the same figures.
        """
        return _key(self.readings, variables)

    def weight(self) -> int:
        """Its cost to the document cache, in text bytes' worth."""
        return VERDICT_WEIGHT + PART_WEIGHT * (len(self.measures) + len(self.nuls.declared_types))

    def errors(self, limits: Limits, variables: Mapping[str, Any] | None) -> list[GraphQLError]:
        """The limits the document exceeds with these variables (empty when it may run)."""
        if self.refusal == "nesting":
            return [
                limit_error(
                    f"The document nests selections and fragments more than {MAX_NESTING} "
                    "levels deep.",
                    "nesting",
                    MAX_NESTING,
                )
            ]
        if self.refusal == "fragments":
            return [
                limit_error(
                    f"The document's operations give its fragments' variables so many different "
                    f"defaults that it needs more than {MAX_FRAGMENT_MEASURES} fragment "
                    "measurements; give the operations the same defaults or send them as "
                    "separate documents.",
                    "fragments",
                    MAX_FRAGMENT_MEASURES,
                )
            ]
        errors = [nul_error(field) for field in self.nuls.fields(variables or {})]
        if self.introspection and not limits.allow_introspection:
            errors.append(introspection_error(limits.introspection_refusal))
        for name in self.oversized_pages:
            field_error = page_size_error(name)
            errors.append(
                GraphQLError(
                    field_error.message,
                    extensions={"code": "BAD_USER_INPUT", "errors": [field_error.as_dict()]},
                )
            )
        aliases = sum(measure.aliases for _, measure in self.measures)
        if aliases > limits.max_aliases:
            errors.append(
                limit_error(
                    f"The document uses {aliases} aliases; at most {limits.max_aliases} are "
                    "allowed (GRAPHQL_MAX_ALIASES).",
                    "GRAPHQL_MAX_ALIASES",
                    limits.max_aliases,
                )
            )
        if self.nodes_ids > limits.max_nodes:
            errors.append(
                limit_error(
                    f"nodes accepts at most {limits.max_nodes} ids (GRAPHQL_MAX_NODES); "
                    f"{self.nodes_ids} were given.",
                    "GRAPHQL_MAX_NODES",
                    limits.max_nodes,
                )
            )
        for name, measure in self.measures:
            if measure.depth > limits.max_depth:
                errors.append(
                    limit_error(
                        f"'{name}' is {measure.depth} levels deep: it exceeds the maximum "
                        f"operation depth of {limits.max_depth} (GRAPHQL_MAX_DEPTH).",
                        "GRAPHQL_MAX_DEPTH",
                        limits.max_depth,
                    )
                )
            if measure.cost > limits.max_cost:
                errors.append(
                    limit_error(
                        f"'{name}' costs {measure.cost}: it exceeds the maximum cost of "
                        f"{limits.max_cost} (GRAPHQL_MAX_COST; each connection counts its first "
                        f"or last, {DEFAULT_PAGE_SIZE} when absent, and nodes its ids, "
                        "multiplied down the path).",
                        "GRAPHQL_MAX_COST",
                        limits.max_cost,
                    )
                )
        return errors


def check_document(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None,
    limits: Limits,
) -> list[GraphQLError]:
    """The limits the document exceeds (empty when it may run)."""
    return judge(schema, document, variables).errors(limits, variables)


def _kept_verdict(
    kept: dict[Any, Any], schema: GraphQLSchema, variables: Mapping[str, Any]
) -> Verdict | None:
    """The verdict kept for this schema that these variables read the same as, if any."""
    for (schema_id, readings), by_key in kept.items():
        if schema_id == id(schema):
            verdict: Verdict | None = by_key.get(_key(readings, variables))
            if verdict is not None:
                return verdict
    return None


def _keep_verdict(
    text: str, kept: dict[Any, Any], schema: GraphQLSchema, verdict: Verdict, key: Any
) -> None:
    if sum(len(by_key) for by_key in kept.values()) >= MAX_VERDICTS:
        return
    by_key = kept.setdefault((id(schema), verdict.readings), {})
    if key in by_key:  # another request of the same readings was walked meanwhile
        return
    by_key[key] = verdict
    DOCUMENTS.charge(text, verdict.weight())


class GraphQLLimits(SchemaExtension):
    """Refuse a document over the request's limits before graphql-core validates or runs it.

    Errors found while parsing or validating get an ``extensions.code`` like every other error
    (those of coercing variables get theirs from :func:`code_request_errors`).
    """

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            coded_parse_error(error)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        text = context.query
        walked: Verdict | None = None
        if document is not None and context.pre_execution_errors is None:
            ambiguous = _unnamed_among_several(context, document)
            if ambiguous is not None:
                context.pre_execution_errors = [ambiguous]
        if document is not None and context.pre_execution_errors is None:
            schema = context.schema._schema
            variables = context.variables or {}
            kept = DOCUMENTS.verdicts(text, document) if text is not None else None
            verdict = _kept_verdict(kept, schema, variables) if kept else None
            if verdict is None:
                verdict = walked = judge(schema, document, variables)
            errors = verdict.errors(limits_of(context.context), variables)
            if errors:
                # Strawberry skips validation when errors are already set, and stops there.
                context.pre_execution_errors = errors
        yield
        if walked is not None and text is not None and document is not None:
            # After validation: a document seen for the first time is kept by then (when it
            # passed), so its second request is not walked either.
            kept = DOCUMENTS.verdicts(text, document)
            if kept is not None:
                _keep_verdict(text, kept, context.schema._schema, walked, walked.key(variables))
        _name_error_limit(context.pre_execution_errors)
        _code(context.pre_execution_errors, "GRAPHQL_VALIDATION_FAILED")


def code_request_errors(errors: list[GraphQLError] | None) -> None:
    """Errors of the request rather than of a field: variables that do not coerce (an Int
    beyond 32 bits, a missing required variable). Called on every result, streamed ones
    included (a subscription's variables are coerced as it starts, and its refusal reaches
    the socket as a streamed result), before unexpected errors are masked: once masked, an
    exception raised in an event stream would look like one of these."""
    request_errors = [
        e
        for e in errors or ()
        if e.path is None and isinstance(e.original_error, GraphQLError | None)
    ]
    _code(request_errors, "BAD_USER_INPUT")


def coded_parse_error(error: GraphQLError) -> GraphQLError:
    """A parse error with its code: the token limit named with its value, else parse failed."""
    # graphql-core's own words for MaxTokensLimiter's refusal; it names no limit.
    if f"more than {MAX_TOKENS} tokens" in error.message and not error.extensions:
        error.extensions = {"code": TOO_COMPLEX, "limit": "tokens", "max": MAX_TOKENS}
    _code([error], "GRAPHQL_PARSE_FAILED")
    return error


# graphql-core's words (the GraphQL spec's GetOperation refuses the request).
MULTIPLE_OPERATIONS = "Must provide operation name if query contains multiple operations."


def _unnamed_among_several(context: Any, document: DocumentNode) -> GraphQLError | None:
    """The spec's refusal of a document of several operations sent without operationName.

    Strawberry names the first operation itself when none is given (its execution context's
    ``operation_name``), so graphql-core ran it: ``mutation M {…} query A {…}`` sent to read A
    ran the mutation. The name as the request gave it is Strawberry's ``_provided_operation_name``
    (tests/integration/test_hostile_review.py pins that it still means that).
    """
    if getattr(context, "_provided_operation_name", None) is not None:
        return None
    operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
    if operations <= 1:
        return None
    return GraphQLError(MULTIPLE_OPERATIONS, extensions={"code": "BAD_REQUEST"})


# graphql-core's words when it stops validating after its max_errors (100 unless told).
_VALIDATION_ABORTED = "Too many validation errors, error limit reached. Validation aborted."


# graphql-core's words when a validation rule runs out of its work budget: the fields of one
# selection compared with each other (overlapping_fields_can_be_merged's MAX_COMPLEXITY_BUDGET),
# the fragments shared by a document's operations (MAX_FRAGMENT_WORK), or Python's recursion.
# Its error tells none of them apart; the message names both budgets and what to send instead.
_VALIDATION_OUT_OF_WORK = "Validation aborted."
_OUT_OF_WORK_MESSAGE = (
    "Validation aborted: the document takes more work to check than allowed (at most "
    f"{overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET:,} comparisons of the fields of "
    f"one selection, {validation_context.MAX_FRAGMENT_WORK:,} fragment expansions). Send fewer "
    "fields of one name in a selection, or fewer fragments shared by operations."
)


def _name_error_limit(errors: list[GraphQLError] | None) -> None:
    """graphql-core's last error when it stops validating, naming the limit and its value (the
    errors it reported before it: the limit is what made it stop)."""
    if errors and errors[-1].message == _VALIDATION_OUT_OF_WORK and not errors[-1].extensions:
        errors[-1].message = _OUT_OF_WORK_MESSAGE
        errors[-1].extensions = {
            "code": "GRAPHQL_VALIDATION_FAILED",
            "limit": "validation_work",
            "max": overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET,
        }
        return
    if errors and errors[-1].message == _VALIDATION_ABORTED and not errors[-1].extensions:
        most = len(errors) - 1
        errors[-1].message = f"Too many validation errors: at most {most} are reported."
        errors[-1].extensions = {
            "code": "GRAPHQL_VALIDATION_FAILED",
            "limit": "validation_errors",
            "max": most,
        }


def _code(errors: list[GraphQLError] | None, code: str) -> None:
    for error in errors or ():
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": code}


INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"
_INTROSPECTION_REFUSALS = {
    "false": "Introspection is disabled on this server (GRAPHQL_INTROSPECTION=false); "
    "the schema is published as schema.graphql.",
    "operators": "Introspection is open to operators only (GRAPHQL_INTROSPECTION=operators).",
}


def introspection_error(message: str) -> GraphQLError:
    """A refusal of ``__schema`` or ``__type``."""
    return GraphQLError(message, extensions={"code": INTROSPECTION_DISABLED})


def limits_of(ctx: Any) -> Limits:
    """The limits for this request's settings and caller."""
    settings = getattr(ctx, "settings", None)
    if settings is None:
        return Limits()
    principal = getattr(ctx, "principal", None)
    mode = settings.introspection
    allowed = mode == "true" or (
        mode == "operators" and principal is not None and principal.is_operator
    )
    return Limits(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_cost=settings.graphql_max_cost,
        max_nodes=settings.graphql_max_nodes,
        allow_introspection=allowed,
        introspection_refusal="" if allowed else _INTROSPECTION_REFUSALS[mode],
    )
