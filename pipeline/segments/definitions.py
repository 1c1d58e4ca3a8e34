"""segment_defs/*.yaml → checked definitions in dependency order, and every problem in every file.

YAML is read with `yaml.compose`, which keeps the line and column of every node, so an error in a
query points into the file the merchant edits, past the `query:` key and the block scalar's indent.
"""

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.segments import tree as t
from pipeline.segments.catalogue import CUSTOMER_COLUMNS, MEMBER_COLUMNS, SEGMENT_NAME
from pipeline.segments.checker import check, segment_references, suggest
from pipeline.segments.errors import SegmentError, Source
from pipeline.segments.parser import parse

KEYS = ("name", "description", "query", "sms")
SMS_KEYS = ("export", "fields", "list", "tag")
# A Klaviyo list name and a Shopify customer tag: both are at most 255 characters there, and a tag is one
# item of Shopify's comma-separated tag list, so it cannot hold a comma.
TARGET_MAX_LENGTH = 255
_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"


@dataclass(frozen=True)
class SegmentDefinition:
    name: str
    description: str
    query: str
    path: Path
    tree: t.Node  # the query, parsed and checked once, here: compiling reads it, not the text
    export: bool = False
    fields: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()  # segments named in `segments CONTAINS '...'`
    # sms.list and sms.tag as written, empty when not; the defaults are the destination's
    # (pipeline/audience/gateways.py AudienceTarget): the segment's name, and smsseg:<name>
    list_name: str = ""
    tag: str = ""


@dataclass
class DefinitionSet:
    """What a directory of definitions holds.

    `definitions`: the valid ones, each after the segments it uses. A valid definition may use a
    segment whose own file has errors: it stays here, and its run waits for that segment.
    `names`: every name found, valid or not, with its file. `unnamed`: files whose name could not be
    read (broken YAML, a bad name), which no name can stand for. `errors`: every problem.
    """

    definitions: dict[str, SegmentDefinition] = field(default_factory=dict)
    errors: list[SegmentError] = field(default_factory=list)
    names: dict[str, Path] = field(default_factory=dict)
    unnamed: list[Path] = field(default_factory=list)

    def errors_for(self, name: str) -> list[SegmentError]:
        return [e for e in self.errors if name in e.definitions]

    def errors_in(self, path: Path) -> list[SegmentError]:
        return [e for e in self.errors if e.file == str(path)]

    def healthy(self) -> list[str]:
        """Valid definitions whose every used segment is valid too, in dependency order."""
        healthy: list[str] = []
        for name, definition in self.definitions.items():  # dependency order: uses come first
            if all(used in healthy for used in definition.uses):
                healthy.append(name)
        return healthy


@dataclass
class _File:
    path: Path
    lines: tuple[str, ...] = ()
    name: str | None = None
    name_node: yaml.Node | None = None
    definition: SegmentDefinition | None = None
    tree: t.Node | None = None
    source: Source | None = None
    errors: list[SegmentError] = field(default_factory=list)


def load_definitions(directory: Path) -> DefinitionSet:
    directory = Path(directory)
    result = DefinitionSet()
    if not directory.is_dir():
        result.errors.append(
            SegmentError(
                str(directory),
                1,
                1,
                "segment definitions directory not found",
                hint="point --segments-dir or SMSSEG_SEGMENTS_DIR at a directory of .yaml files",
            )
        )
        return result
    files = [_read(p) for p in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])]
    named: dict[str, _File] = {}
    for f in files:
        if f.name is None:
            result.unnamed.append(f.path)
            continue
        if f.name in named:
            first = named[f.name]
            # Neither file can say which one the view is: both are in error, each at its own name.
            for one, other in ((f, first), (first, f)):
                one.errors.append(
                    _node_error(
                        one,
                        one.name_node,
                        f"segment name {f.name!r} is also used by {other.path.name}",
                        hint="names are unique across files: rename one of them",
                    )
                )
        else:
            named[f.name] = f
            result.names[f.name] = f.path
    for f in files:
        if f.tree is not None:
            for ref in segment_references(f.tree):
                if ref.value not in result.names:
                    f.errors.append(
                        f.source.error(
                            ref.span.start,
                            ref.span.end,
                            f"unknown segment {ref.value!r}",
                            hint=suggest(ref.value, sorted(result.names)),
                        )
                    )
    valid = {f.name: f for f in named.values() if not f.errors and f.definition is not None}
    order, cycles = _order(valid)
    for cycle in cycles:
        first = valid[cycle[0]]
        ref = next(r for r in segment_references(first.tree) if r.value == cycle[1 % len(cycle)])
        error = first.source.error(
            ref.span.start,
            ref.span.end,
            f"segments form a cycle: {' -> '.join([*cycle, cycle[0]])}",
            hint="a segment cannot contain itself, directly or through other segments",
        )
        result.errors.append(SegmentError(**{**error.__dict__, "definitions": tuple(cycle)}))
    for f in files:
        result.errors.extend(
            SegmentError(**{**e.__dict__, "definitions": (f.name,) if f.name else ()}) for e in f.errors
        )
    result.errors.sort(key=lambda e: (e.file, e.line, e.column))
    result.definitions = {name: valid[name].definition for name in order}
    return result


def _order(valid: dict[str, _File]) -> tuple[list[str], list[list[str]]]:
    """Names in dependency order, then the cycles (each as the names along it) left out of it.

    A definition that depends on a cycle without being in it stays in the order, at the end: it is
    valid, and its run waits for segments that fail.
    """
    deps = {n: {u for u in f.definition.uses if u in valid} for n, f in valid.items()}
    order, done = [], set()
    while True:
        ready = sorted(n for n in deps if n not in done and deps[n] <= done)
        if not ready:
            break
        order += ready
        done.update(ready)
    cycles, in_cycle = [], set()
    for start in sorted(set(deps) - done):
        path, node = [], start
        while node not in path and node not in in_cycle:
            path.append(node)
            node = min(d for d in deps[node] if d not in done)
        if node in path:
            cycle = path[path.index(node) :]
            turn = cycle.index(min(cycle))
            cycle = cycle[turn:] + cycle[:turn]
            cycles.append(cycle)
            in_cycle.update(cycle)
    order += sorted(set(deps) - done - in_cycle)
    return order, cycles


def _read(path: Path) -> _File:
    f = _File(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        f.errors.append(SegmentError(str(path), 1, 1, f"cannot read the file: {e}"))
        return f
    f.lines = tuple(text.split("\n"))
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        f.errors.append(
            _error(
                f,
                mark.line + 1,
                mark.column + 1,
                f"YAML syntax error: {e.problem}",
                hint=(e.context or "") and f"{e.context} (line {e.context_mark.line + 1})",
            )
        )
        return f
    except yaml.YAMLError as e:
        f.errors.append(SegmentError(str(path), 1, 1, f"YAML error: {e}"))
        return f
    if not isinstance(root, yaml.MappingNode):
        line, column = (root.start_mark.line + 1, root.start_mark.column + 1) if root else (1, 1)
        f.errors.append(
            _error(
                f,
                line,
                column,
                "a definition is a mapping with name, description, query and sms",
                hint="start with `name: my_segment`",
            )
        )
        return f
    values = _mapping(f, root, KEYS, "definition")
    name_node = values.get("name")
    if name_node is None:
        f.errors.append(_error(f, 1, 1, "missing `name`", hint="add `name: my_segment`, the view's name"))
    elif (name := _string(f, name_node, "name")) is not None:
        if SEGMENT_NAME.fullmatch(name):
            f.name, f.name_node = name, name_node
        else:
            f.errors.append(
                _node_error(
                    f,
                    name_node,
                    f"{name!r} is not a valid segment name",
                    hint="lowercase letters, digits and _, starting with a letter, at most "
                    "63 characters; it names the view segments.<name>",
                )
            )
    description = ""
    if "description" in values:
        description = _string(f, values["description"], "description") or ""
    export, fields, list_name, tag = _sms(f, values.get("sms"))
    query_node = values.get("query")
    if query_node is None:
        f.errors.append(_error(f, 1, 1, "missing `query`", hint="add `query: amount_spent > 100`"))
        return f
    query = _string(f, query_node, "query")
    if query is None:
        return f
    f.source = Source(name=str(path), text=query, lines=f.lines, positions=_positions(text, query_node, query))
    f.tree, errors = parse(f.source)
    if f.tree is not None:
        errors += check(f.tree, f.source)
    f.errors += errors
    if not f.errors:
        uses = tuple(sorted({r.value for r in segment_references(f.tree)}))
        f.definition = SegmentDefinition(
            name=f.name,
            description=description,
            query=query,
            path=path,
            tree=f.tree,
            export=export,
            fields=fields,
            uses=uses,
            list_name=list_name,
            tag=tag,
        )
    return f


def _sms(f: _File, node: yaml.Node | None) -> tuple[bool, tuple[str, ...], str, str]:
    if node is None:
        return False, (), "", ""
    if not isinstance(node, yaml.MappingNode):
        f.errors.append(_node_error(f, node, "`sms` is a mapping", hint="sms: {export: true, fields: [...]}"))
        return False, (), "", ""
    values = _mapping(f, node, SMS_KEYS, "sms")
    export = False
    if (export_node := values.get("export")) is not None:
        if isinstance(export_node, yaml.ScalarNode) and export_node.tag == _BOOL:
            export = _construct(export_node)
        else:
            f.errors.append(
                _node_error(
                    f,
                    export_node,
                    f"sms.export is true or false, not {export_node.value!r}"
                    if isinstance(export_node, yaml.ScalarNode)
                    else "sms.export is true or false",
                    hint="export: true sends the audience to the SMS gateway",
                )
            )
    fields: list[str] = []
    if (fields_node := values.get("fields")) is not None:
        if not isinstance(fields_node, yaml.SequenceNode):
            f.errors.append(
                _node_error(
                    f,
                    fields_node,
                    "sms.fields is a list of marts.customers columns",
                    hint="fields: [abandoned_checkout_url, amount_spent]",
                )
            )
        else:
            for item in fields_node.value:
                column = _string(f, item, "an sms.fields entry")
                if column is None:
                    continue
                if column not in CUSTOMER_COLUMNS:
                    f.errors.append(
                        _node_error(
                            f,
                            item,
                            f"unknown sms.fields column {column!r}",
                            hint=suggest(column, list(CUSTOMER_COLUMNS)),
                        )
                    )
                elif column in (*MEMBER_COLUMNS, "phone_e164"):
                    f.errors.append(
                        _node_error(
                            f,
                            item,
                            f"{column} is already sent with every member",
                            hint=f"remove it: every member carries {', '.join(MEMBER_COLUMNS)}",
                        )
                    )
                elif column in fields:
                    f.errors.append(_node_error(f, item, f"{column} is listed twice in sms.fields"))
                else:
                    fields.append(column)
    list_name = _target(f, values.get("list"), "sms.list", "list: Winback 90 days (the Klaviyo list's name)")
    tag = _target(f, values.get("tag"), "sms.tag", "tag: smsseg:winback (the Shopify customer tag)")
    if tag and "," in tag:
        f.errors.append(
            _node_error(
                f,
                values["tag"],
                f"sms.tag {tag!r} holds a comma",
                hint="Shopify keeps tags as one comma-separated list: a tag cannot hold a comma",
            )
        )
        tag = ""
    return export, tuple(fields), list_name, tag


def _target(f: _File, node: yaml.Node | None, what: str, hint: str) -> str:
    """sms.list or sms.tag: a name at the destination, trimmed; "" when absent or wrong (the error is recorded)."""
    if node is None:
        return ""
    value = _string(f, node, what)
    if value is None:
        return ""
    if len(value.strip()) > TARGET_MAX_LENGTH:
        f.errors.append(
            _node_error(
                f, node, f"{what} is {len(value.strip())} characters long; at most {TARGET_MAX_LENGTH}", hint=hint
            )
        )
        return ""
    return value.strip()


def _mapping(f: _File, node: yaml.MappingNode, keys: tuple[str, ...], what: str) -> dict[str, yaml.Node]:
    """The known keys of a mapping; unknown and repeated keys are errors."""
    values: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in keys:
            close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
            f.errors.append(
                _node_error(
                    f,
                    key_node,
                    f"unknown key {key!r} in the {what}",
                    hint=(f"did you mean {close[0]}? " if close else "") + f"the keys are {', '.join(keys)}",
                )
            )
        elif key in values:
            f.errors.append(_node_error(f, key_node, f"{key!r} is given twice", hint="keep one of them"))
        else:
            values[key] = value_node
    return values


def _string(f: _File, node: yaml.Node, what: str) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR and node.value.strip():
        return node.value
    shown = f"not {node.value!r}" if isinstance(node, yaml.ScalarNode) else "not a list or mapping"
    f.errors.append(
        _node_error(
            f,
            node,
            f"{what} must be a non-empty string, {shown}",
            hint="quote it if YAML reads it as a number, a date or true/false",
        )
    )
    return None


def _construct(node: yaml.ScalarNode) -> object:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _node_error(f: _File, node: yaml.Node, message: str, hint: str = "") -> SegmentError:
    start, end = node.start_mark, node.end_mark
    width = end.column - start.column if end.line == start.line and end.column > start.column else 1
    error = _error(f, start.line + 1, start.column + 1, message, hint)
    return SegmentError(**{**error.__dict__, "width": width})


def _error(f: _File, line: int, column: int, message: str, hint: str = "") -> SegmentError:
    source_line = f.lines[line - 1] if 0 < line <= len(f.lines) else ""
    return SegmentError(str(f.path), line, column, message, hint, source_line)


def _positions(text: str, node: yaml.ScalarNode, value: str) -> tuple[tuple[int, int], ...]:
    """(line, column) in the file of each character of a scalar's value.

    Folding, indentation and quoting only add or change whitespace and quote characters, so each
    non-blank character of the value is found, in order, in the scalar's text in the file.
    """
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("|", ">"):
        start = text.index("\n", start) + 1 if "\n" in text[start:end] else end
    elif node.style in ("'", '"'):
        start += 1
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def locate(index: int) -> tuple[int, int]:
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= index:
                lo = mid
            else:
                hi = mid - 1
        return (lo + 1, index - line_starts[lo] + 1)

    positions, i, last = [], start, None
    for c in value:
        if not c.isspace() and (found := text.find(c, i, end)) >= 0:
            last, i = found, found + 1
            positions.append(locate(found))
        else:
            # Blanks (and characters written as escapes) sit just after the last character found.
            positions.append(locate(start if last is None else min(last + 1, len(text))))
    return tuple(positions)
