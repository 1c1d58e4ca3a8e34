"""The segment language: definition files → checked typed trees → sqlglot expressions → DuckDB views.

The Dagster assets and the `smsseg segments` commands call only what is exported here.
"""

from pipeline.segments.catalogue import SEGMENT_NAME, docs_table
from pipeline.segments.compiler import (
    compile_query,
    create_segment_view,
    reads_reachability,
    render,
    segment_view,
    tables_read,
)
from pipeline.segments.definitions import DefinitionSet, SegmentDefinition, load_definitions
from pipeline.segments.empty import empty_reason
from pipeline.segments.errors import SegmentError, SegmentErrors
from pipeline.segments.parser import parse

__all__ = [
    "SEGMENT_NAME",
    "DefinitionSet",
    "SegmentDefinition",
    "SegmentError",
    "SegmentErrors",
    "compile_query",
    "create_segment_view",
    "docs_table",
    "empty_reason",
    "load_definitions",
    "parse",
    "reads_reachability",
    "render",
    "segment_view",
    "tables_read",
]
