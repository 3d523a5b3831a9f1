"""Pydantic's validation errors as people read them: `field.path: what is wrong (what is allowed)`.

Every problem on its own line, with "did you mean" for a misspelt field. Knows the manifest only
through a FieldTree (its root model and the models behind its discriminator tags).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError


@dataclass(frozen=True)
class FieldTree:
    """The model errors are reported against, and the model behind each discriminator tag."""

    root: type[BaseModel]
    tagged: Mapping[str, type[BaseModel] | None]


# Field names people reach for that are spelled differently here (used for "did you mean").
SYNONYMS = {
    "retries": "attempts",
    "retry": "attempts",
    "retry_attempts": "attempts",
    "memory": "memory_mib",
    "mem": "memory_mib",
    "vcpu": "vcpus",
    "cpus": "vcpus",
    "cpu": "vcpus",
    "gpu": "gpus",
    "timeout": "timeout_minutes",
    "job_definition": "definition",
    "job_queue": "queue",
    "queue": "queue",
    "lr": "learning_rate",
    "name": "run_name",
    "concurrency": "max_concurrency",
    "params": "parameters",
    "start": "start_index",
    "end": "end_index",
    "min": "from",
    "max": "to",
}


def _models_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _models_in(arg)
        if found is not None:
            return found
    return None


def _model_at(loc: Iterable[Any], tree: FieldTree) -> type[BaseModel] | None:
    """The model class that owns the fields at `loc` (for listing allowed names)."""
    current: type[BaseModel] | None = tree.root
    for part in loc:
        if isinstance(part, str) and part in tree.tagged:
            current = tree.tagged[part]
        elif isinstance(part, int):
            continue
        elif current is not None:
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            current = _models_in(field.annotation) if field is not None else None
    return current


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def did_you_mean(name: str, allowed: list[str]) -> str | None:
    lowered = name.lower().replace("-", "_")
    if lowered in allowed and lowered != name:
        return lowered
    if SYNONYMS.get(lowered) in allowed:
        return SYNONYMS[lowered]
    transposed = [a for a in allowed if len(a) == len(lowered) and sorted(a) == sorted(lowered)]
    if transposed:  # "agse" is "ages" with two letters swapped, though difflib ranks "tags" closer
        return transposed[0]
    close = difflib.get_close_matches(lowered, allowed, n=1, cutoff=0.6)
    return close[0] if close else None


def _path(loc: Iterable[Any], tree: FieldTree) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in tree.tagged or part == "[key]":
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "manifest"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _num(limit: Any) -> str:
    return f"{limit:g}" if isinstance(limit, float) else f"{limit:,}" if isinstance(limit, int) else str(limit)


_PLAIN_KINDS = frozenset({"agesweep", "ages_shape", "slices_shape", "axis_shape"})
_WRONG_TYPE = {  # pydantic error type → what the value is not (what is allowed)
    "int_type": "a whole number (an integer)", "int_parsing": "a whole number (an integer)",
    "int_from_float": "a whole number (an integer)",
    "float_type": "a number (a number)", "float_parsing": "a number (a number)",
    "string_type": "text (a string)",
    "bool_type": "true/false (a boolean)",
    "dict_type": "a mapping (a mapping of fields)", "model_type": "a mapping (a mapping of fields)",
    "model_attributes_type": "a mapping (a mapping of fields)",
    "list_type": "a list (a list)",
}
# pydantic error type → what is wrong (what is allowed), from the offending value and the error's ctx
_DESCRIBE: dict[str, Callable[[Any, dict[str, Any]], str]] = {
    "missing": lambda value, ctx: "missing (required)",
    "greater_than_equal": lambda value, ctx: f"{_show(value)} is too small (≥ {_num(ctx['ge'])})",
    "greater_than": lambda value, ctx: f"{_show(value)} is too small (> {_num(ctx['gt'])})",
    "less_than_equal": lambda value, ctx: f"{_show(value)} is too large (≤ {_num(ctx['le'])})",
    "less_than": lambda value, ctx: f"{_show(value)} is too large (< {_num(ctx['lt'])})",
    "string_too_long": lambda value, ctx: f"{len(value)} characters is too long (at most {ctx['max_length']})",
    "string_too_short": lambda value, ctx: f"empty (at least {ctx['min_length']} character)",
    "too_short": lambda value, ctx: f"has {ctx.get('actual_length', 0)} items (at least {ctx['min_length']})",
    "too_long": lambda value, ctx: (
        f"{len(value)} characters is too long (at most {ctx['max_length']})" if isinstance(value, str)
        else f"has {ctx.get('actual_length', '?')} items (at most {ctx['max_length']})"
    ),
    "literal_error": lambda value, ctx: f"{_show(value)} is not allowed (allowed: {ctx.get('expected')})",
}


def _unknown_field(loc: tuple[int | str, ...], tree: FieldTree) -> str:
    name = str(loc[-1])
    parent = _model_at(loc[:-1], tree)
    allowed = _field_names(parent) if parent else []
    hint = did_you_mean(name, allowed) if allowed else None
    choices = f"allowed: {', '.join(allowed)}" if allowed else "not a known field"
    return f"unknown field {name!r} (" + (f"did you mean {hint!r}? " if hint else "") + choices + ")"


def _describe(err: ErrorDetails, tree: FieldTree) -> str:
    kind, value = err["type"], err.get("input")
    if kind in _PLAIN_KINDS:
        return err["msg"]
    if kind == "extra_forbidden":
        return _unknown_field(err["loc"], tree)
    if isinstance(value, bool) and kind in _WRONG_TYPE:
        return f"{str(value).lower()} is not {_WRONG_TYPE[kind][:-1]}; YAML reads yes/no/on/off as true/false)"
    if kind in _WRONG_TYPE:
        return f"{_show(value)} is not {_WRONG_TYPE[kind]}"
    describe = _DESCRIBE.get(kind)
    if describe is not None:
        return describe(value, dict(err.get("ctx") or {}))
    return f"{err['msg']} (got {_show(value)})"


PATHS_KIND = "agesweep_paths"


def paths_problem(problems: list[tuple[str, str]]) -> PydanticCustomError:
    """One validation error carrying several problems, each at its own field path: the checks that
    look across fields (a model validator) still report `field.path: what is wrong (allowed)`."""
    return PydanticCustomError(PATHS_KIND, "{count} problems", {"count": len(problems), "problems": problems})


def format_errors(exc: ValidationError, tree: FieldTree) -> list[str]:
    """Pydantic errors → `field.path: what is wrong (what is allowed)`, one line each, no duplicates."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        path = _path(loc, tree)
        if err["type"] == PATHS_KIND:
            prefix = "" if path == "manifest" else path + "."
            found = [f"{prefix}{where}: {what}" for where, what in (err.get("ctx") or {}).get("problems", [])]
        else:
            found = [f"{path}: {_describe(err, tree)}"]
        lines.extend(line for line in found if line not in lines)
    return lines
