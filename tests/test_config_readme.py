"""config/README.md documents every key config/schema.yaml accepts, and no other.

A key path is dotted from the top level (``evaluation.filter_seen``); a mapping whose keys are
the user's names (``datasets:``, ``models:``, ``studies:``: the schema's ``additionalProperties``
with ``properties`` of its own) contributes one placeholder segment, written ``<name>`` in the
README (``datasets.<dataset>.columns.user``). A free-form object (``params:``, ``search:``,
``model_params:``, a study's ``grid:``) is one key: its contents are the model's or the user's,
not the schema's. The README documents a key as a table row whose first cell is the key path in
backticks.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\|\s*`([A-Za-z0-9_.<>\-]+)`\s*\|")


def schema_paths(node: dict, prefix: str = "") -> set[str]:
    """Every key path the schema node accepts, placeholders written ``*``."""
    paths: set[str] = set()
    for key, sub in (node.get("properties") or {}).items():
        path = f"{prefix}{key}"
        paths.add(path)
        paths |= schema_paths(sub, path + ".")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("properties"):
        paths |= schema_paths(extra, prefix + "*.")
    return paths


def documented_paths(text: str) -> list[str]:
    """The key paths of config/README.md's table rows, placeholders written ``*``."""
    keys = [m[1] for line in text.splitlines() if (m := ROW.match(line))]
    return [re.sub(r"<[^>]+>", "*", key) for key in keys]


def test_the_walk_sees_nested_and_named_sections():
    """The walk reaches keys under properties and under a named mapping, and stops at free-form
    objects (a guard against a walk that finds nothing and so passes trivially)."""
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    paths = schema_paths(schema)
    assert {"seeds", "evaluation.filter_seen", "datasets.*.columns.timestamp",
            "models.*.readings.select", "studies.*.grid"} <= paths
    assert not any(p.startswith("models.*.params.") for p in paths)
    assert documented_paths("| `datasets.<dataset>.path` | string |\n| key | type |\n") == [
        "datasets.*.path"]


def test_config_readme_documents_exactly_the_schemas_keys():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    expected = schema_paths(schema)
    documented = documented_paths((ROOT / "config" / "README.md").read_text())
    repeated = sorted({k for k in documented if documented.count(k) > 1})
    missing = sorted(expected - set(documented))
    unknown = sorted(set(documented) - expected)
    assert not missing, f"config/README.md does not document: {missing}"
    assert not unknown, f"config/README.md documents keys config/schema.yaml lacks: {unknown}"
    assert not repeated, f"config/README.md documents these keys twice: {repeated}"
