"""Parse the subset of GraphQL the Shopify emulator answers: one operation, fields, aliases,
arguments, variables and inline fragments (no named fragments, no directives)."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n]*)
    |(?P<block>\"\"\"(?:\\\"\"\"|.)*?\"\"\")
    |(?P<string>"(?:[^"\\\n]|\\.)*")
    |(?P<spread>\.\.\.)
    |(?P<punct>[{}():$!=@\[\]])
    |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    |(?P<name>[_A-Za-z][_0-9A-Za-z]*)
    """,
    re.VERBOSE | re.DOTALL,
)


class GraphQLSyntaxError(ValueError):
    """The document is not GraphQL, or uses a feature this subset does not support."""


@dataclass(frozen=True)
class Field:
    name: str
    alias: str | None
    arguments: Mapping[str, Any]
    selections: tuple[Field, ...]

    @property
    def key(self) -> str:
        """The name the field has in the response."""
        return self.alias or self.name

    def child(self, name: str) -> Field | None:
        return next((f for f in self.selections if f.name == name), None)


@dataclass(frozen=True)
class Operation:
    kind: str  # "query" or "mutation"
    selections: tuple[Field, ...]


def parse(document: str, variables: Mapping[str, Any] | None = None) -> Operation:
    """Parse one operation, with `$variables` replaced by their values."""
    return _Parser(document, variables or {}).operation()


def _tokenize(document: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    while pos < len(document):
        match = _TOKEN.match(document, pos)
        if match is None:
            raise GraphQLSyntaxError(f"unexpected character {document[pos]!r} at offset {pos}")
        pos = match.end()
        if match.lastgroup != "skip":
            tokens.append((match.lastgroup, match.group()))
    return tokens


class _Parser:
    def __init__(self, document: str, variables: Mapping[str, Any]) -> None:
        self._tokens = _tokenize(document)
        self._pos = 0
        self._variables = variables

    def operation(self) -> Operation:
        kind = "query"
        if self._peek() in (("name", "query"), ("name", "mutation")):
            kind = self._take()[1]
            if self._peek()[0] == "name":
                self._take()
            if self._peek() == ("punct", "("):
                self._skip_variable_definitions()
        selections = self._selection_set()
        if self._pos != len(self._tokens):
            raise GraphQLSyntaxError("only one operation per document is supported")
        return Operation(kind, selections)

    def _peek(self) -> tuple[str, str]:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else ("end", "")

    def _take(self, kind: str | None = None, text: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token[0] == "end" or (kind and token[0] != kind) or (text and token[1] != text):
            raise GraphQLSyntaxError(f"expected {text or kind}, found {token[1] or 'end of document'!r}")
        self._pos += 1
        return token

    def _skip_variable_definitions(self) -> None:
        # Values come from the request's "variables"; declared types and defaults are not checked.
        depth = 0
        while True:
            token = self._take()
            if token == ("punct", "("):
                depth += 1
            elif token == ("punct", ")"):
                depth -= 1
                if depth == 0:
                    return

    def _selection_set(self) -> tuple[Field, ...]:
        self._take("punct", "{")
        selections: list[Field] = []
        while self._peek() != ("punct", "}"):
            if self._peek()[0] == "spread":
                self._take()
                self._take("name", "on")
                self._take("name")
                selections.extend(self._selection_set())
            else:
                selections.append(self._field())
        self._take("punct", "}")
        return tuple(selections)

    def _field(self) -> Field:
        name = self._take("name")[1]
        alias = None
        if self._peek() == ("punct", ":"):
            self._take()
            alias, name = name, self._take("name")[1]
        arguments: dict[str, Any] = {}
        if self._peek() == ("punct", "("):
            self._take()
            while self._peek() != ("punct", ")"):
                arg = self._take("name")[1]
                self._take("punct", ":")
                arguments[arg] = self._value()
            self._take()
        if self._peek() == ("punct", "@"):
            raise GraphQLSyntaxError("directives are not supported")
        selections = self._selection_set() if self._peek() == ("punct", "{") else ()
        return Field(name, alias, arguments, selections)

    def _value(self) -> Any:
        kind, text = self._take()
        if (kind, text) == ("punct", "$"):
            return self._variables.get(self._take("name")[1])
        if kind == "string":
            return json.loads(text)
        if kind == "block":
            return textwrap.dedent(text[3:-3].replace('\\"""', '"""')).strip("\n")
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(text, text)
        if text == "[":
            items = []
            while self._peek() != ("punct", "]"):
                items.append(self._value())
            self._take()
            return items
        if text == "{":
            fields = {}
            while self._peek() != ("punct", "}"):
                key = self._take("name")[1]
                self._take("punct", ":")
                fields[key] = self._value()
            self._take()
            return fields
        raise GraphQLSyntaxError(f"unexpected {text!r} where a value belongs")
