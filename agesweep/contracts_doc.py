"""docs/internals.md's contract tables, generated from the models' JSON Schema.

``python -m agesweep.contracts_doc`` rewrites every block between ``<!-- contract: Name -->`` and
``<!-- /contract -->``; a test fails when the page and the models disagree, so neither drifts.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agesweep.contracts import BOUNDARY_MODELS, StartRunResult

DOC = Path(__file__).resolve().parents[1] / "docs" / "internals.md"
_BLOCK = re.compile(r"(<!-- contract: (\w+) -->\n)(.*?)(<!-- /contract -->)", re.S)


def schema_definitions() -> dict[str, dict[str, Any]]:
    """Every model reachable from the boundary models, by name, as JSON Schema."""
    models: list[type[BaseModel]] = [*BOUNDARY_MODELS, StartRunResult]
    _, schema = models_json_schema([(m, "serialization") for m in models])
    definitions: dict[str, dict[str, Any]] = schema["$defs"]
    return definitions


def _type_of(node: dict[str, Any]) -> str:
    if "$ref" in node:
        return str(node["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in node:
        return " \\| ".join(_type_of(option) for option in node["anyOf"])
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    kind = node.get("type", "any")
    if kind == "array":
        if "prefixItems" in node:
            return "[" + ", ".join(_type_of(item) for item in node["prefixItems"]) + "]"
        return f"list[{_type_of(node.get('items', {}))}]"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string, {_type_of(node['additionalProperties'])}]"
    return str(kind)


def table(name: str, definitions: dict[str, dict[str, Any]]) -> str:
    """The Markdown table of one model: field, type, required, description."""
    model = definitions[name]
    required = set(model.get("required", []))
    rows = ["| field | type | required | meaning |", "|---|---|---|---|"]
    for field, node in model.get("properties", {}).items():
        meaning = " ".join(str(node.get("description", "")).split()).replace("|", "\\|")
        rows.append(f"| `{field}` | {_type_of(node)} | {'yes' if field in required else 'no'} | {meaning} |")
    return "\n".join(rows) + "\n"


def render(text: str, definitions: dict[str, dict[str, Any]] | None = None) -> str:
    """The page with every contract block regenerated (unknown model names raise KeyError)."""
    found = definitions or schema_definitions()
    return _BLOCK.sub(lambda m: m.group(1) + table(m.group(2), found) + m.group(4), text)


def documented(text: str) -> list[str]:
    return [m.group(2) for m in _BLOCK.finditer(text)]


def main() -> None:
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(render(text), encoding="utf-8")
    print(f"{DOC}: {len(documented(text))} contract tables regenerated", file=sys.stderr)


if __name__ == "__main__":
    main()
