"""`smsseg segments check|sql|preview`: the language's tools for whoever writes definitions."""

import argparse
import datetime as dt
from pathlib import Path

import duckdb
from sqlglot import Dialect, exp

from pipeline.segments import tree as t
from pipeline.segments.catalogue import ATTRIBUTES, CUSTOMERS
from pipeline.segments.checker import segment_references, suggest
from pipeline.segments.compiler import CUSTOMER, compile_query, parse_checked, render, segment_view, select_members
from pipeline.segments.definitions import SegmentDefinition, load_definitions
from pipeline.segments.empty import empty_reason
from pipeline.segments.errors import SegmentErrors, Source
from pipeline.settings import SettingsError, data_dir_from, parse_as_of, segments_dir_from, today_in
from pipeline.sqlbuild import column, count_rows, identifier, qualified
from pipeline.warehouse.build import shop_timezone


def register(subparsers: argparse._SubParsersAction) -> None:
    segments = subparsers.add_parser("segments", help="check, compile and preview segment definitions")
    commands = segments.add_subparsers(dest="segments_command", required=True)

    check = commands.add_parser("check", help="report every problem in the definitions; exit 1 if any")
    check.add_argument("dir", nargs="?", help="definitions directory (env SMSSEG_SEGMENTS_DIR; default segment_defs/)")
    check.add_argument("--segments-dir", help="the same, as the other commands take it")
    check.set_defaults(func=cmd_check)

    sql = commands.add_parser("sql", help="print the SQL of a definition or of a query")
    target = sql.add_mutually_exclusive_group(required=True)
    target.add_argument("name", nargs="?", help="a definition's name")
    target.add_argument("--query", help='a query, e.g. "amount_spent > 100"')
    sql.add_argument("--dialect", default="duckdb", type=dialect, help="any sqlglot dialect (default duckdb)")
    sql.add_argument("--as-of", help="evaluation date YYYY-MM-DD (default today in the shop's time zone)")
    sql.add_argument("--segments-dir", help="definitions directory (env SMSSEG_SEGMENTS_DIR)")
    sql.set_defaults(func=cmd_sql)

    preview = commands.add_parser("preview", help="count and sample the customers a definition or a query matches")
    what = preview.add_mutually_exclusive_group(required=True)
    what.add_argument("name", nargs="?", help="a definition's name")
    what.add_argument("--query", help='a query, e.g. "amount_spent > 100"')
    preview.add_argument("--segments-dir", help="definitions directory (env SMSSEG_SEGMENTS_DIR)")
    preview.add_argument("--as-of", help="evaluation date YYYY-MM-DD: only the warehouse's own (the default)")
    preview.add_argument("--limit", type=int, default=10, help="sample size (default 10)")
    preview.add_argument("--data-dir", help="holds warehouse.duckdb (env SMSSEG_DATA_DIR; default data/)")
    preview.set_defaults(func=cmd_preview)


def cmd_check(args: argparse.Namespace) -> int:
    if args.dir and args.segments_dir and Path(args.dir) != Path(args.segments_dir):
        print(f"two definitions directories given ({args.dir} and --segments-dir {args.segments_dir}): give one")
        return 2
    result = load_definitions(segments_dir_from(args.dir or args.segments_dir))
    for error in result.errors:
        print(f"{error}\n")
    for name, defn in result.definitions.items():
        export = " (exported)" if defn.export else ""
        print(f"ok {name}{export}: {defn.path}")
    if result.errors:
        print(f"{len(result.errors)} error(s)")
        return 1
    return 0


def dialect(name: str) -> str:
    """A dialect sqlglot knows, or an argparse error that names the closest one."""
    try:
        Dialect.get_or_raise(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e} Use one sqlglot knows, e.g. duckdb, postgres, spark.") from None
    return name


def cmd_sql(args: argparse.Namespace) -> int:
    as_of = _as_of(args.as_of) or today_in(shop_timezone(data_dir_from(None)))
    try:
        if args.query is not None:
            expr = compile_query(args.query, as_of)
        else:
            definition = _definition(args.name, args.segments_dir)
            if definition is None:
                return 1
            expr = segment_view(definition, as_of)
        print(render(expr, args.dialect, pretty=True))
    except SegmentErrors as e:
        print(e)
        return 1
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    path = data_dir_from(args.data_dir) / "warehouse.duckdb"
    if not path.exists():
        print(f"{path}: no warehouse yet. Run `smsseg run` first.")
        return 1
    if args.query is not None:
        query, source = args.query, Source.of_query(args.query)
    else:
        definition = _definition(args.name, args.segments_dir)
        if definition is None:
            return 1
        query, source = definition.query, Source.of_query(definition.query, name=f"{definition.path} (query)")
    con = duckdb.connect(str(path), read_only=True)
    try:
        # The marts hold one evaluation date's data: a query is read as of that day, and only that day.
        built = con.execute("select max(as_of) from marts.customers").fetchall()[0][0] or today_in(
            shop_timezone(data_dir_from(args.data_dir))
        )
        as_of = _as_of(args.as_of) or built
        if as_of != built:
            print(
                f"--as-of {as_of}: the warehouse holds the data as of {built}, and another day would move the "
                f"query's relative dates but not the orders, consent and checkouts they are compared with. "
                f"Preview as of {built} (leave --as-of out), or evaluate that day with smsseg run --as-of {as_of} "
                f"and read its members in audience.segment_membership (an earlier day is a backfill, which "
                f"records the day's membership but does not replace the warehouse)"
            )
            return 1
        views = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = 'segments'"
            ).fetchall()
        ]
        tables = {
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables where table_schema = 'audience'"
            ).fetchall()
        }
        try:
            node = parse_checked(query, source)
            _check_references(node, source, sorted(views))
            _check_built(node, source, tables)
            members = select_members(node, as_of).subquery(identifier("members"))
        except SegmentErrors as e:
            print(e)
            return 1
        count = count_rows(members)
        total = con.execute(render(count)).fetchall()[0][0]
        columns = ("customer_id", "first_name", "last_name", "phone_e164", "sms_subscription_status", "amount_spent")
        sample = (
            exp.select(*(column(c, CUSTOMER) for c in columns))
            .from_(qualified(CUSTOMERS).as_(identifier(CUSTOMER)))
            .where(
                exp.In(
                    this=column("customer_id", CUSTOMER),
                    query=exp.select(column("customer_id")).from_(members).subquery(),
                )
            )
            .order_by(column("customer_id", CUSTOMER))
            .limit(max(args.limit, 0))
        )
        rows = con.execute(render(sample)).fetchall()
        reason = empty_reason(con, node, as_of) if total == 0 else None
    finally:
        con.close()
    print(f"{total} customer(s) match as of {as_of}" + (f": {reason}" if reason else ""))
    if rows:
        print(" | ".join(columns))
        for row in rows:
            print(" | ".join("" if v is None else str(v) for v in row))
    return 0


def _definition(name: str, directory: str | None) -> SegmentDefinition | None:
    """The valid definition called `name`, or None after printing why there is none."""
    result = load_definitions(segments_dir_from(directory))
    if name not in result.names:
        print(f"no segment named {name!r}; known: {', '.join(sorted(result.names)) or 'none'}")
        return None
    if name not in result.definitions:
        for error in result.errors_for(name):
            print(f"{error}\n")
        return None
    return result.definitions[name]


def _check_references(node: t.Node, source: Source, views: list[str]) -> None:
    """Every `segments CONTAINS 'x'` names a segment the warehouse has; SegmentErrors otherwise."""
    errors = [
        source.error(
            ref.span.start,
            ref.span.end,
            f"no segment named {ref.value!r} in the warehouse",
            hint=suggest(ref.value, views) if views else "the warehouse has no segments yet",
        )
        for ref in segment_references(node)
        if ref.value not in views
    ]
    if errors:
        raise SegmentErrors(errors)


def _check_built(node: t.Node, source: Source, tables: set[str]) -> None:
    """Every attribute read from a table of its own (can_receive_sms) finds it in the warehouse; a
    warehouse published by an earlier release has none until the next run."""
    errors = [
        source.error(
            c.attribute.span.start,
            c.attribute.span.end,
            f"the warehouse has no {attribute.members} for {attribute.name} yet",
            hint="run smsseg run once: its segments step builds it",
        )
        for c in t.conditions(node)
        if not isinstance(c, t.Matches | t.CalledWithValue)
        and (attribute := ATTRIBUTES.get(c.attribute.text)) is not None
        and attribute.members
        and attribute.members not in tables
    ]
    if errors:
        raise SegmentErrors(errors)


def _as_of(value: str | None) -> dt.date | None:
    try:
        return parse_as_of(value)
    except SettingsError as e:
        raise SystemExit(str(e)) from None
