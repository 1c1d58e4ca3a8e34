"""The README stays true: its language tables are the catalogue's, its examples are valid."""

import re

from pipeline.segments import docs_table, load_definitions
from pipeline.settings import PROJECT_DIR


def test_readme_tables_are_the_catalogue() -> None:
    assert docs_table().strip() in (PROJECT_DIR / "README.md").read_text()


def test_readme_example_segment_is_valid(tmp_path) -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    example = re.search(r"```yaml\n(name: summer_vips.*?)```", readme, re.S).group(1)
    (tmp_path / "summer_vips.yaml").write_text(example)
    definitions = load_definitions(tmp_path)
    assert definitions.errors == [] and list(definitions.definitions) == ["summer_vips"]
