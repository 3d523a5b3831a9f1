"""retry-manifest.yaml: the run's original manifest narrowed to exactly the failed (age, slice) pairs."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from agesweep.contracts import Summary

RUN_NAME_MAX = 64  # the manifest model's run_name limit
_RETRY_SUFFIX = re.compile(r"^(.*)-retry(\d*)$")

Pair = tuple[int, int, int]  # (age, start_index, end_index)


def retry_run_name(run_name: str) -> str:
    """aladyn -> aladyn-retry -> aladyn-retry2 -> aladyn-retry3."""
    match = _RETRY_SUFFIX.match(run_name)
    if not match:
        return f"{run_name}-retry"
    return f"{match.group(1)}-retry{int(match.group(2) or 1) + 1}"


def failed_pairs(summary: Summary) -> list[Pair]:
    return sorted({(f.age, f.start_index, f.end_index) for f in summary.failures})


def _pairs_text(pairs: Sequence[Pair]) -> str:
    return "; ".join(f"age {a} slice {s}-{e}" for a, s, e in pairs)


def group_by_slices(pairs: Sequence[Pair]) -> list[tuple[list[tuple[int, int]], list[int]]]:
    """(slices, ages) groups: ages that failed the same slices share one group; ordered by first age."""
    by_age: dict[int, set[tuple[int, int]]] = {}
    for age, start, end in pairs:
        by_age.setdefault(age, set()).add((start, end))
    groups: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for age, spans in sorted(by_age.items()):
        groups.setdefault(tuple(sorted(spans)), []).append(age)
    return [(list(spans), ages) for spans, ages in sorted(groups.items(), key=lambda g: g[1][0])]


def retry_manifests(
    original: Mapping[str, Any], pairs: Sequence[Pair], run_name: str | None = None, run_id: str | None = None
) -> list[dict[str, Any]]:
    """The original manifest narrowed to exactly the failed (age, slice) pairs, with a new run name
    and ``resume_from: <run_id>`` (the run retried), so the retry resumes that run's checkpoints
    and reuses what it finished instead of starting over.

    Ages that failed the same slices share one manifest; when different ages failed different
    slices, one manifest per group keeps the rerun to exactly the failed pairs (no cross product).
    """
    groups = group_by_slices(pairs)
    base_name = retry_run_name(str(original.get("run_name") or run_name or "run"))
    docs = []
    for n, (spans, ages) in enumerate(groups, start=1):
        suffix = "" if len(groups) == 1 else f"-{n}"
        doc = dict(original)
        doc["run_name"] = base_name[: RUN_NAME_MAX - len(suffix)] + suffix
        if run_id:
            doc["resume_from"] = run_id
        doc["ages"] = list(ages)
        doc["slices"] = [{"start_index": s, "end_index": e} for s, e in spans]
        docs.append(doc)
    return docs


def _header(summary: Summary, pairs: Sequence[Pair], documents: int) -> list[str]:
    manifest = summary.lineage.manifest
    header = [
        f"# Retry of run {summary.run_id}: only the (age, slice) pairs that failed.",
        f"# Original: s3://{manifest.bucket}/{manifest.key} version {manifest.version_id} sha256 {manifest.sha256}",
        "# Failed: " + _pairs_text(pairs),
        "# Rerun: put this file into the stack bucket under manifests/.",
    ]
    if documents > 1:
        header.append(
            f"# Ages failed different slices: {documents} manifests, one per YAML document; "
            "split at '---' and put each into manifests/."
        )
    return header


def retry_manifest_yaml(original_text: str, summary: Summary) -> str:
    """retry-manifest.yaml: empty when nothing failed; else the narrowed manifest(s) under a header."""
    pairs = failed_pairs(summary)
    if not pairs:
        return ""
    original = yaml.safe_load(original_text) or {}
    if not isinstance(original, dict):
        raise ValueError("the original manifest is not a YAML mapping")
    docs = retry_manifests(original, pairs, summary.run_name, summary.run_id)
    body = "---\n".join(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None) for doc in docs)
    return "\n".join(_header(summary, pairs, len(docs))) + "\n" + body


def retry_documents(text: str) -> list[str]:
    """The YAML documents of a retry manifest (one, unless ages failed different slices)."""
    if not text.strip():
        return []
    return [doc for doc in re.split(r"(?m)^---\s*$", text) if doc.strip()]


def validate_retry_manifest(text: str) -> None:
    """Check each document against the project's manifest model (schema only: the stack's own
    limits are checked again when the retry is submitted). Raises ManifestInvalid."""
    from agesweep.manifest import parse_manifest
    from agesweep.settings import Settings

    schema_only = Settings(age_min=0, age_max=150)
    for document in retry_documents(text):
        parse_manifest(document.encode("utf-8"), "retry-manifest.yaml", schema_only)


def retry_file(
    summary: Summary, original: Callable[[], str], validate: Callable[[str], None] | None = validate_retry_manifest
) -> str:
    """The retry file's text, never an exception: the summary must still go out.

    A manifest that cannot be read or narrowed leaves a commented file naming the failed pairs; one
    that does not validate is kept under a warning. Either way a note on the summary says so.
    """
    if not summary.failures:
        return ""
    try:
        text = retry_manifest_yaml(original(), summary)
    except Exception as exc:  # any failure: the summary must still go out, so say what went wrong
        summary.notes.append(f"retry manifest could not be built: {type(exc).__name__}: {exc}")
        return (
            f"# Retry manifest for run {summary.run_id} could not be built: {type(exc).__name__}: {exc}\n"
            f"# Failed: {_pairs_text(failed_pairs(summary))}\n"
        )
    if validate is None:
        return text
    try:
        validate(text)
    except Exception as exc:  # any failure: keep the file, flag it loudly
        problem = " ".join(str(exc).split())
        summary.notes.append(f"retry manifest does not validate: {problem}")
        return f"# WARNING: this retry manifest does not validate: {problem}\n" + text
    return text
