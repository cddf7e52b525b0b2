"""The values reference of docs/install.md, generated from values.schema.json (descriptions)
and values.yaml (defaults). `python -m tests.chart.values_reference` rewrites the section;
tests/chart/test_values.py fails when it is out of step."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "agentprod"
DOC = ROOT / "docs" / "install.md"
START = "<!-- values-reference:start (python -m tests.chart.values_reference) -->"
END = "<!-- values-reference:end -->"


def leaves(schema: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(dotted key, schema) of every documented key: objects with properties are opened up."""
    found: list[tuple[str, dict[str, Any]]] = []
    for name, child in schema.get("properties", {}).items():
        key = f"{prefix}{name}"
        if child.get("type") == "object" and "properties" in child:
            found += leaves(child, key + ".")
        elif (
            child.get("type") == "array"
            and child.get("items", {}).get("additionalProperties") is False
        ):
            found.append((key, child))
            found += leaves(child["items"], key + "[].")
        else:
            found.append((key, child))
    return found


def default_of(values: dict[str, Any], key: str) -> str:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    return "`" + json.dumps(node, ensure_ascii=False) + "`"


def table() -> str:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, node in leaves(schema):
        kind = node.get("type", "")
        kinds = "/".join(kind) if isinstance(kind, list) else kind
        if "enum" in node:
            kinds += " (" + ", ".join(node["enum"]) + ")"
        description = node.get("description", "").replace("|", "\\|")
        rows.append(f"| `{key}` | {kinds} | {default_of(values, key)} | {description} |")
    return "\n".join(rows) + "\n"


def section() -> str:
    return f"{START}\n{table()}{END}"


def current() -> str:
    text = DOC.read_text()
    start, end = text.index(START), text.index(END) + len(END)
    return text[start:end]


def main() -> int:
    text = DOC.read_text()
    DOC.write_text(text.replace(current(), section()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
