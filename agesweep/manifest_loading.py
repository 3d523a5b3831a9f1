"""Manifest bytes → plain data: YAML (safe, no duplicate keys, no aliases, bounded depth) or JSON.

Every failure is a ManifestInvalid whose one problem names the line and what is expected.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from agesweep.errors import ManifestInvalid

MAX_MANIFEST_BYTES = 1024 * 1024  # a 10,000-slice explicit list is ~0.5 MiB of YAML
MAX_YAML_DEPTH = 20


class _Loader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """Safe loader that also rejects duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(None, None, "a key is a list or mapping", key_node.start_mark)
            ident = (key_node.tag, key_node.value)  # compared as written: cheaper than constructing keys
            if ident in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                )
            seen.add(ident)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _check_node_tree(root: yaml.Node) -> None:
    """Reject aliases (the billion-laughs vector; a manifest never needs them) and deep nesting."""
    seen: set[int] = set()
    level: list[yaml.Node] = [root]
    depth = 1
    while level:
        if depth > MAX_YAML_DEPTH:
            line = level[0].start_mark.line + 1
            raise ManifestInvalid([f"manifest: nested deeper than {MAX_YAML_DEPTH} levels at line {line} (a flat manifest)"])
        below: list[yaml.Node] = []
        for node in level:
            if id(node) in seen:
                line = node.start_mark.line + 1
                raise ManifestInvalid(
                    [f"manifest: YAML alias of the anchor at line {line} (no anchors/aliases; write values out)"]
                )
            seen.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                below.extend(node.value)
            elif isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    below.append(key)
                    below.append(value)
        level = below
        depth += 1


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if "could not determine a constructor" in str(exc):
        tag = re.search(r"'([^']+)'", problem)
        return f"manifest: unsupported YAML tag {tag.group(1) if tag else ''}{where} (plain YAML: no !tags)"
    return f"manifest: not valid YAML{where}: {problem} (YAML or JSON)"


def _top_level_kind(data: Any) -> str:
    if data is None:
        return "the file is empty (or only null)"
    kinds = {list: "a list", str: "text", bool: "true/false", int: "a number", float: "a number"}
    return f"top level is {kinds.get(type(data), type(data).__name__)}"


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ManifestInvalid([f"manifest: duplicate key {k!r} (each key once)"])
        out[k] = v
    return out


def load_data(raw: bytes, source_name: str = "manifest.yaml") -> dict[str, Any]:
    """Bytes → a plain mapping. Any unreadable input becomes a one-line ManifestInvalid."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestInvalid([f"manifest: {len(raw):,} bytes is too large (at most {MAX_MANIFEST_BYTES:,} bytes)"])
    if not raw.strip():
        raise ManifestInvalid(["manifest: file is empty (a YAML or JSON mapping of manifest fields)"])
    if b"\x00" in raw:
        raise ManifestInvalid(["manifest: binary file, contains NUL bytes (a UTF-8 YAML or JSON text file)"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestInvalid([f"manifest: not UTF-8 text, bad byte at offset {exc.start} (a UTF-8 YAML or JSON text file)"]) from None
    try:
        if source_name.lower().endswith(".json"):
            data = json.loads(text, object_pairs_hook=_json_pairs)
        else:
            loader = _Loader(text)
            try:
                node = loader.get_single_node()
                if node is None:
                    raise ManifestInvalid(["manifest: file is empty (a YAML or JSON mapping of manifest fields)"])
                _check_node_tree(node)
                data = loader.construct_document(node)
            finally:
                loader.dispose()
    except json.JSONDecodeError as exc:
        raise ManifestInvalid([f"manifest: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg} (JSON or YAML)"]) from None
    except yaml.YAMLError as exc:
        raise ManifestInvalid([_yaml_error(exc)]) from None
    except RecursionError:
        raise ManifestInvalid([f"manifest: nested too deeply (a flat manifest, at most {MAX_YAML_DEPTH} levels)"]) from None
    if not isinstance(data, dict):
        raise ManifestInvalid([f"manifest: {_top_level_kind(data)} (a mapping of manifest fields, e.g. ages: ...)"])
    return data
