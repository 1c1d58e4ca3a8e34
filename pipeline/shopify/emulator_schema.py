"""The emulator's GraphQL: the Admin API schema it serves, documents checked against it, and graphql-core's
errors put in the words, codes and paths Shopify (graphql-ruby) uses for the same mistakes.

Every document the emulator receives, and every document inside one (a bulk query, a bulk mutation), is
parsed and validated here, so a misspelt field is refused as Shopify refuses it rather than answered null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    get_operation_ast,
    is_abstract_type,
    is_object_type,
    parse,
    validate,
)
from graphql.utilities import value_from_ast_untyped

SCHEMA = build_schema((Path(__file__).parent / "admin-2026-10.graphql").read_text(encoding="utf-8"))

MUTATION_COST = 10  # Shopify's cost of a mutation field
# graphql-core's wording of a validation error -> graphql-ruby's message and extensions for the same mistake
_RUBY_WORDING = (
    (
        re.compile(r"Cannot query field '(?P<field>\w+)' on type '(?P<type>\w+)'"),
        "Field '{field}' doesn't exist on type '{type}'",
        {"code": "undefinedField", "typeName": "{type}", "fieldName": "{field}"},
    ),
    (
        re.compile(r"Unknown argument '(?P<argument>\w+)' on field '\w+\.(?P<field>\w+)'"),
        "Field '{field}' doesn't accept argument '{argument}'",
        {"code": "argumentNotAccepted", "name": "{field}", "typeName": "Field", "argumentName": "{argument}"},
    ),
    (
        re.compile(r"Field '(?P<field>\w+)' argument '(?P<argument>\w+)' of type '.*' is required"),
        "Field '{field}' is missing required arguments: {argument}",
        {"code": "missingRequiredArguments", "className": "Field", "name": "{field}", "arguments": "{argument}"},
    ),
    (
        re.compile(r"Field '(?P<field>\w+)' of type '\[*(?P<type>\w+)[!\]]*' must have a selection of subfields"),
        "Field must have selections (field '{field}' returns {type} but has no selections. "
        "Did you mean '{field} {{ ... }}'?)",
        {"code": "selectionMismatch", "nodeName": "field '{field}'", "typeName": "{type}"},
    ),
)


def check(text: str) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
    """Parse and validate a document against SCHEMA: (the document, Shopify's errors, [] when valid); the
    document is None when it does not parse."""
    try:
        document = parse(text)
    except GraphQLSyntaxError as exc:
        return None, [_syntax_error(exc)]
    return document, shopify_errors(validate(SCHEMA, document), document)


def _syntax_error(error: GraphQLSyntaxError) -> dict[str, Any]:
    # graphql-ruby's parser says "syntax error, unexpected end of file"; graphql-core "Unexpected <EOF>."
    description = error.description.rstrip(".").replace("<EOF>", "end of file")
    out: dict[str, Any] = {"message": f"syntax error, {description[:1].lower()}{description[1:]}"}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    return out


def shopify_errors(errors: Iterable[GraphQLError], document: DocumentNode | None = None) -> list[dict[str, Any]]:
    """graphql-core's errors as Shopify words them. A validation error's path is where it sits in the
    document (["query Name", "customers", "edges", ...]), as graphql-ruby reports it; an execution
    error's path is where it sits in the response."""
    paths = _document_paths(document) if document is not None else {}
    return [_shopify_error(error, paths) for error in errors]


def _shopify_error(error: GraphQLError, paths: Mapping[int, list[str]]) -> dict[str, Any]:
    message, extensions = error.message, dict(error.extensions or {})
    for pattern, wording, codes in _RUBY_WORDING:
        if match := pattern.match(message):
            message = wording.format(**match.groupdict())
            extensions = {key: value.format(**match.groupdict()) for key, value in codes.items()}
            break
    out: dict[str, Any] = {"message": message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    path = list(error.path) if error.path else next((paths[id(n)] for n in error.nodes or () if id(n) in paths), None)
    if path:
        out["path"] = path
    if extensions:
        out["extensions"] = extensions
    return out


def _document_paths(document: DocumentNode) -> dict[int, list[str]]:
    """Each field, argument and fragment of the document (by id) -> its path, labelled as graphql-ruby does."""
    paths: dict[int, list[str]] = {}

    def walk(selection_set: SelectionSetNode | None, path: list[str]) -> None:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                label = (selection.alias or selection.name).value
                for argument in selection.arguments:
                    paths[id(argument)] = [*path, label, argument.name.value]
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                label = "..." + (f" on {condition.name.value}" if condition else "")
            else:
                label = f"... {selection.name.value}"
            paths[id(selection)] = [*path, label]
            walk(getattr(selection, "selection_set", None), [*path, label])

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            name = f" {definition.name.value}" if definition.name else ""
            walk(definition.selection_set, [f"{definition.operation.value}{name}"])
        elif isinstance(definition, FragmentDefinitionNode):
            walk(definition.selection_set, [f"fragment {definition.name.value}"])
    return paths


def requested_cost(document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any]) -> int:
    """Shopify's requested cost, near enough: 10 a mutation field; a customers page 2 + 2 a customer (the
    customer and its phone); nodes() one an id; any other field 1."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 1
    total = 0
    for field in root_fields(operation):
        arguments = {a.name.value: value_from_ast_untyped(a.value, variables) for a in field.arguments}
        if operation.operation.value == "mutation":
            total += MUTATION_COST
        elif field.name.value == "customers":
            total += 2 + 2 * int(arguments.get("first") or arguments.get("last") or 0)
        elif field.name.value == "nodes":
            total += len(arguments.get("ids") or [])
        else:
            total += 1
    return total


def root_fields(operation: OperationDefinitionNode) -> list[FieldNode]:
    return [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def fields_of(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode], typename: str | None
) -> list[FieldNode]:
    """The fields a selection asks of an object of type `typename`, its fragments that apply spread out."""
    fields: list[FieldNode] = []

    def collect(selections: Iterable[Node]) -> None:
        for selection in selections:
            if isinstance(selection, FieldNode):
                fields.append(selection)
                continue
            fragment = fragments[selection.name.value] if isinstance(selection, FragmentSpreadNode) else selection
            condition = fragment.type_condition.name.value if fragment.type_condition else None
            if _applies(condition, typename):
                collect(fragment.selection_set.selections)

    collect(selection_set.selections if selection_set else ())
    return fields


def _applies(condition: str | None, typename: str | None) -> bool:
    if condition is None or condition == typename:
        return True
    abstract, concrete = SCHEMA.get_type(condition), SCHEMA.get_type(typename or "")
    return is_abstract_type(abstract) and is_object_type(concrete) and SCHEMA.is_sub_type(abstract, concrete)
