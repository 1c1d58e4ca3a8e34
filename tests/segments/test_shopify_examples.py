"""Queries as Shopify's documentation writes them: the ones we serve give the evaluator's members, and the
README's list of refused ones is refused, each saying what it needs."""

import argparse
import json
import re
from pathlib import Path

import pytest

from pipeline.segments import SegmentErrors, compile_query, render
from pipeline.segments.commands import register
from pipeline.segments.compiler import parse_checked
from pipeline.settings import PROJECT_DIR
from tests.segments.conftest import AS_OF, Built
from tests.segments.evaluator import Evaluator

# Shopify's documented example queries, one a line with the page that shows it and how it was found (in this
# session's search of the stored pages, or carried over from session 11's list): the 95% measure runs them all.
EXAMPLES_FILE = Path(__file__).parent / "fixtures" / "shopify_examples.jsonl"
EXAMPLES = [json.loads(line) for line in EXAMPLES_FILE.read_text().splitlines()]


def refused_in_readme() -> list[str]:
    readme = (PROJECT_DIR / "README.md").read_text()
    table = readme.split("<!-- refused Shopify examples", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `(.+?)` \|", table, re.M)


ACCEPTED = [e["query"] for e in EXAMPLES if e["query"] not in refused_in_readme()]


@pytest.fixture(scope="module")
def evaluator(varied: Built) -> Evaluator:
    return Evaluator(varied.oracle(), varied.as_of)


@pytest.mark.parametrize("query", ACCEPTED)
def test_documented_examples_give_the_evaluators_members(varied: Built, evaluator: Evaluator, query: str) -> None:
    con = varied.connect()
    try:
        found = {row[0] for row in con.execute(render(compile_query(query, varied.as_of))).fetchall()}
    finally:
        con.close()
    assert found == evaluator.members(parse_checked(query))


def test_the_readme_lists_the_refused_examples() -> None:
    # the table is read (its rows shrink as filters are served; created_by_app_id has no data yet)
    assert "created_by_app_id = 580111" in refused_in_readme()


@pytest.mark.parametrize("query", refused_in_readme())
def test_refused_examples_say_what_they_need(query: str) -> None:
    filter_name = re.match(r"[\w.]+", query).group()
    with pytest.raises(SegmentErrors) as caught:
        compile_query(query, AS_OF)
    assert [e.message.split(":")[0] for e in caught.value.errors] == [
        f"{filter_name} is a Shopify filter smsseg cannot evaluate yet"
    ]


def test_every_example_has_its_page_and_the_refused_ones_are_in_the_readme() -> None:
    assert len(EXAMPLES) == len({e["query"] for e in EXAMPLES}) >= 59
    assert all(e["source"].startswith(("https://help.shopify.com/", "https://shopify.dev/")) for e in EXAMPLES)
    assert set(refused_in_readme()) <= {e["query"] for e in EXAMPLES}


def test_95_percent_of_the_examples_preview_and_none_with_a_traceback(
    varied: Built, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Each example through `segments preview --query`, as a merchant pastes it: a refused one is an error
    that names the filter (exit 1), never an exception."""
    (tmp_path / "warehouse.duckdb").write_bytes(varied.warehouse.read_bytes())
    parser = argparse.ArgumentParser(prog="smsseg")
    register(parser.add_subparsers(dest="command", required=True))
    outcomes = {}
    for example in EXAMPLES:
        args = parser.parse_args(["segments", "preview", "--query", example["query"], "--data-dir", str(tmp_path)])
        outcomes[example["query"]] = args.func(args)  # an exception fails the test: a traceback
        out = capsys.readouterr().out
        assert ("customer(s) match as of" in out) == (outcomes[example["query"]] == 0), out
    refused = sorted(q for q, code in outcomes.items() if code != 0)
    assert refused == sorted(refused_in_readme())
    assert len(ACCEPTED) / len(EXAMPLES) >= 0.95, f"{len(ACCEPTED)} of {len(EXAMPLES)} accepted"
