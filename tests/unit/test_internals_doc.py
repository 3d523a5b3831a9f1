"""docs/internals.md shows every boundary model as its JSON Schema says, so the page cannot drift."""

from __future__ import annotations

from agesweep.contracts_doc import DOC, documented, render, schema_definitions, table


def test_every_contract_table_matches_its_model() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "docs/internals.md is out of date: run `python -m agesweep.contracts_doc`"


def test_every_model_that_crosses_a_boundary_is_documented() -> None:
    shown = set(documented(DOC.read_text(encoding="utf-8")))
    missing = sorted(set(schema_definitions()) - shown)
    assert not missing, f"docs/internals.md has no contract table for {missing}"


def test_a_changed_field_changes_the_table() -> None:
    definitions = schema_definitions()
    before = table("ItemResult", definitions)
    definitions["ItemResult"]["properties"]["status"] = {"type": "string", "description": "renamed"}
    assert table("ItemResult", definitions) != before and "| `status` | string | yes | renamed |" in table("ItemResult", definitions)
