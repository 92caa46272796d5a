"""The column lists in README.md and docs/config_schema.md are the schema's own (results_schema.py), so
they cannot drift: each ``<!-- columns:TABLE -->...<!-- /columns -->`` block must equal
``results_schema.described_columns(TABLE)``."""

import re

import pytest

from hybrid_sweep import results_schema
from tests.conftest import ROOT

BLOCK = re.compile(r"<!-- columns:(\w+) -->(.*?)<!-- /columns -->", re.S)


@pytest.mark.parametrize("doc", ["README.md", "docs/config_schema.md"])
def test_documented_columns_are_the_schemas(doc):
    blocks = BLOCK.findall((ROOT / doc).read_text())
    assert {t for t, _ in blocks} == {"results", "runs"}, doc
    for table, text in blocks:
        assert " ".join(text.split()) == results_schema.described_columns(table), (
            f"{doc}: the {table} columns differ from the schema; paste: {results_schema.described_columns(table)}")
