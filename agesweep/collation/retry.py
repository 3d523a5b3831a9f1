"""retry-manifest.yaml: the run's original manifest narrowed to exactly what failed: the failed
(age, slice) pairs of a v1 run, the failed points of a run with named axes."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml
from pydantic import TypeAdapter

from agesweep.axes import Axis, DateWindows, NumberRange, axis_values
from agesweep.contracts import Summary
from agesweep.points import where

RUN_NAME_MAX = 64  # the manifest model's run_name limit
_RETRY_SUFFIX = re.compile(r"^(.*)-retry(\d*)$")

Pair = tuple[int, int, int]  # (age, start_index, end_index)
Values = tuple[tuple[str, str], ...]  # a point's (axis, value label), in manifest order
Slot = tuple[Values, int | None, int, int]  # a failed job: its point's values, age, start_index, end_index
_AXIS: TypeAdapter[Any] = TypeAdapter(Axis)


def retry_run_name(run_name: str) -> str:
    """aladyn -> aladyn-retry -> aladyn-retry2 -> aladyn-retry3."""
    match = _RETRY_SUFFIX.match(run_name)
    if not match:
        return f"{run_name}-retry"
    return f"{match.group(1)}-retry{int(match.group(2) or 1) + 1}"


def failed_pairs(summary: Summary) -> list[Pair]:
    """The failed (age, slice) pairs of a run without named axes."""
    return sorted({(f.age, f.start_index, f.end_index) for f in summary.failures if f.age is not None and not f.point})


def failed_slots(summary: Summary) -> list[Slot]:
    """Every failed job of a run with named axes, once each, in the order they failed."""
    slots = {(tuple(f.point.items()), f.age, f.start_index, f.end_index): None for f in summary.failures if f.point}
    return list(slots)


def _pairs_text(pairs: Sequence[Pair]) -> str:
    return "; ".join(f"age {a} slice {s}-{e}" for a, s, e in pairs)


def _slots_text(slots: Sequence[Slot]) -> str:
    return "; ".join(where(dict(values), age, start, end) for values, age, start, end in slots)


def _failed_text(summary: Summary) -> str:
    slots = failed_slots(summary)
    return _slots_text(slots) if slots else _pairs_text(failed_pairs(summary))


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


def raw_values(axes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each axis's value label -> the value as the original manifest wrote it: a list's entry, a
    range's number, a date window's {start, end}."""
    found: dict[str, dict[str, Any]] = {}
    for name, spec in axes.items():
        try:
            axis = _AXIS.validate_python(spec)
        except ValueError:  # not an axis after all: its labels are written as they are
            continue
        if isinstance(axis, DateWindows):
            raws: list[Any] = [{"start": a.isoformat(), "end": b.isoformat()} for a, b in axis.windows()]
        else:
            raws = list(axis.values() if isinstance(axis, NumberRange) else spec)
        found[name] = {v.label: raw for v, raw in zip(axis_values(name, axis), raws, strict=True)}
    return found


def _columns(points: Sequence[Values]) -> list[list[str]]:
    return [[values[i][1] for values in points] for i in range(len(points[0]))]


def _distinct(column: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(column))


def point_groups(points: Sequence[Values]) -> list[tuple[str, list[list[str]]]]:
    """(combine, each axis's values) per manifest that reruns exactly these points.

    Points that make a whole product of their values are one product manifest; else they are
    zipped, split (in order, first fit) so that no manifest lists an axis value twice, which the
    manifest model refuses even for zip."""
    columns = _columns(points)
    distinct = [_distinct(c) for c in columns]
    product = 1
    for values in distinct:
        product *= len(values)
    if product == len(set(points)):
        return [("product", distinct)]
    groups: list[tuple[list[Values], list[set[tuple[str, str]]]]] = []  # (points, each axis's values used)
    for point in points:
        home = next((g for g in groups if all(v not in used for v, used in zip(point, g[1], strict=True))), None)
        if home is None:
            home = ([], [set() for _ in point])
            groups.append(home)
        home[0].append(point)
        for value, used in zip(point, home[1], strict=True):
            used.add(value)
    return [("zip", _columns(g)) for g, _ in groups]


def _named(base: str, n: int, count: int) -> str:
    suffix = "" if count == 1 else f"-{n}"
    return base[: RUN_NAME_MAX - len(suffix)] + suffix


def _point_docs(original: Mapping[str, Any], slots: Sequence[Slot]) -> list[dict[str, Any]]:
    """(axes, combine[, ages, slices]) of each retry manifest: the trainer's points that failed the
    same (ages, slices) share manifests, so no retry reruns a (point, age, slice) that succeeded."""
    by_point: dict[Values, list[Pair]] = {}
    for values, age, start, end in slots:
        by_point.setdefault(values, [])
        if age is not None:
            by_point[values].append((age, start, end))
    shapes: dict[tuple[Any, ...], list[Values]] = {}
    for values, pairs in by_point.items():
        for spans, ages in group_by_slices(pairs) or [([], [])]:
            shapes.setdefault((tuple(spans), tuple(ages)), []).append(values)
    raws = raw_values(original.get("axes") or {})
    docs = []
    for (spans, ages), points in shapes.items():
        names = [name for name, _ in points[0]]
        for combine, columns in point_groups(points):
            axes = {n: [raws.get(n, {}).get(label, label) for label in column] for n, column in zip(names, columns, strict=True)}
            doc: dict[str, Any] = {"axes": axes, "combine": combine}
            if ages:
                doc |= {"ages": list(ages), "slices": [{"start_index": s, "end_index": e} for s, e in spans]}
            docs.append(doc)
    return docs


def point_retry_manifests(
    original: Mapping[str, Any], slots: Sequence[Slot], run_name: str | None = None, run_id: str | None = None
) -> list[dict[str, Any]]:
    """The original manifest narrowed to exactly the failed points (and, for the trainer, each
    point's failed (age, slice) pairs), the values as the original wrote them, with a new run
    name; the trainer's also ``resume_from: <run_id>`` (an own job cannot resume)."""
    base_name = retry_run_name(str(original.get("run_name") or run_name or "run"))
    parts = _point_docs(original, slots)
    docs = []
    for n, part in enumerate(parts, start=1):
        doc = {**original, "run_name": _named(base_name, n, len(parts))}
        if run_id and "ages" in part:
            doc["resume_from"] = run_id
        docs.append(doc | part)
    return docs


def _header(summary: Summary, failed: str, documents: int, *, points: bool = False) -> list[str]:
    manifest = summary.lineage.manifest
    header = [
        f"# Retry of run {summary.run_id}: only the {'points' if points else '(age, slice) pairs'} that failed.",
        f"# Original: s3://{manifest.bucket}/{manifest.key} version {manifest.version_id} sha256 {manifest.sha256}",
        "# Failed: " + failed,
        "# Rerun: put this file into the stack bucket under manifests/.",
    ]
    if documents > 1:
        why = "The failed points" if points else "Ages failed different slices"
        header.append(
            f"# {why}: {documents} manifests, one per YAML document; "
            "split at '---' and put each into manifests/."
        )
    return header


def retry_manifest_yaml(original_text: str, summary: Summary) -> str:
    """retry-manifest.yaml: empty when nothing failed; else the narrowed manifest(s) under a header."""
    pairs, slots = failed_pairs(summary), failed_slots(summary)
    if not pairs and not slots:
        return ""
    original = yaml.safe_load(original_text) or {}
    if not isinstance(original, dict):
        raise ValueError("the original manifest is not a YAML mapping")
    if slots:
        docs = point_retry_manifests(original, slots, summary.run_name, summary.run_id)
        header = _header(summary, _slots_text(slots), len(docs), points=True)
    else:
        docs = retry_manifests(original, pairs, summary.run_name, summary.run_id)
        header = _header(summary, _pairs_text(pairs), len(docs))
    body = "---\n".join(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None) for doc in docs)
    return "\n".join(header) + "\n" + body


def retry_documents(text: str) -> list[str]:
    """The YAML documents of a retry manifest (one, unless ages failed different slices or the
    failed points need several)."""
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
            f"# Failed: {_failed_text(summary)}\n"
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
