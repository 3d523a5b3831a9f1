"""The manifest checks that look across fields: which workload it is and what that one needs, the
axes, the command's `Ref::` placeholders, credentials in the environment, and what the stack
allows (job definitions, secrets, images by tag). Each problem is (field path, what is wrong
(what is allowed)), all of them at once.
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import TYPE_CHECKING

from agesweep import axes as sweep_axes
from agesweep.settings import Settings
from agesweep.workload import credential_problem, refs_in

if TYPE_CHECKING:
    from agesweep.manifest import Manifest

Problems = list[tuple[str, str]]

# What agesweep itself passes every job of an own workload (README: Your own workload).
BUILTIN_PARAMETERS = ("run_id", "input", "output", "output_folder", "results_uri")
# The trainer's Ref:: parameters an axis may sweep (template.yaml's job definition command).
TRAINER_AXES = ("epochs", "learning_rate", "seed")
RESERVED_NAMES = frozenset(BUILTIN_PARAMETERS) | {"age", "ages", "start_index", "end_index", "slice_size", "resume_from"}
MUTABLE_TAGS = frozenset({"latest", "main", "master", "dev", "develop", "stable", "edge", "nightly"})


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def workload_problems(manifest: Manifest, stack: Settings) -> Problems:
    """Every cross-field problem of a manifest that is valid field by field."""
    problems = _shape_problems(manifest) + _axes_problems(manifest) + _image_problems(manifest, stack)
    if manifest.workload == "trainer":
        problems += _trainer_axes_problems(manifest)
    if manifest.job.container is not None:
        problems += _command_problems(manifest) + _environment_problems(manifest, stack)
    if manifest.job.definition is not None and not stack.definition_allowed(manifest.job.definition):
        allowed = ", ".join(sorted(stack.allowed_job_definitions)) or "none"
        problems.append((
            "job.definition",
            f"{manifest.job.definition!r} is not allowed by this stack (its own definition, or one its "
            f"AllowedJobDefinitions parameter lists: {allowed})",
        ))
    return problems


def _shape_problems(manifest: Manifest) -> Problems:
    problems: Problems = []
    job = manifest.job
    if manifest.workload == "trainer":
        problems += [(name, "missing (required)") for name in ("ages", "slices") if getattr(manifest, name) is None]
        if job.parameters:
            problems.append(("job.parameters", "only for your own job (the trainer's parameters are under training)"))
        return problems
    for name in ("ages", "slices"):
        if getattr(manifest, name) is not None:
            problems.append((name, "only for the stack's trainer (sweep your own job over a named axis under axes)"))
    if manifest.resume_from is not None:
        problems.append(("resume_from", "only for the stack's trainer (finished points of your own job are not tracked yet)"))
    if job.container is not None:
        clashes = [n for n in ("definition", "image", "vcpus", "memory_mib", "gpus", "timeout_minutes") if getattr(job, n) is not None]
        problems += [(f"job.{n}", f"not with job.container (set job.container.{n} instead)") for n in clashes
                     if n not in ("definition",)]
        if "definition" in clashes:
            problems.append(("job.definition", "not with job.container (one or the other: an existing definition, or a container spec)"))
    if not manifest.axes:
        problems.append(("axes", "missing (required for your own job: at least one named axis, e.g. scene: [a, b])"))
    return problems


def _axes_problems(manifest: Manifest) -> Problems:
    problems: Problems = []
    for name in manifest.axes:
        if name in RESERVED_NAMES:
            problems.append((f"axes.{name}", f"{name!r} is a name agesweep sets (reserved: {', '.join(sorted(RESERVED_NAMES))})"))
        clash = set(sweep_axes.supplied_names(name, manifest.axes[name])) & set(manifest.job.parameters)
        if clash:
            problems.append((f"axes.{name}", f"also set in job.parameters ({', '.join(sorted(clash))}: one or the other)"))
    lengths = [sweep_axes.axis_length(a) for a in manifest.axes.values()]
    if manifest.combine == "zip" and len(set(lengths)) > 1:
        shown = ", ".join(f"{n} {sweep_axes.axis_length(a)}" for n, a in manifest.axes.items())
        problems.append(("axes", f"zip needs axes of one length ({shown}: the same number of values each)"))
    count = sweep_axes.point_count(lengths, manifest.combine) * max(1, len(manifest.age_values()))
    if count > sweep_axes.MAX_POINTS:
        problems.append((
            "axes",
            f"{count:,} points is too many (at most {sweep_axes.MAX_POINTS:,} per run: split the sweep into "
            f"several manifests, or zip axes instead of combining every value)",
        ))
    for name, axis in manifest.axes.items():
        if not isinstance(axis, list):
            continue
        counts = Counter(v.label for v in sweep_axes.axis_values(name, axis))
        twice = sorted(v for v, n in counts.items() if n > 1)
        if twice:
            problems.append((f"axes.{name}", f"{', '.join(twice[:5])} listed twice (each value once)"))
    return problems


def _trainer_axes_problems(manifest: Manifest) -> Problems:
    from agesweep.manifest import TrainingParams

    problems: Problems = []
    for name, axis in manifest.axes.items():
        if name not in TRAINER_AXES:
            problems.append((
                f"axes.{name}",
                f"not a trainer parameter ({_hint(name, list(TRAINER_AXES))}the trainer's axes: {', '.join(TRAINER_AXES)})",
            ))
            continue
        if getattr(manifest.training, name) is not None:
            problems.append((f"training.{name}", f"also an axis (axes.{name}: one or the other)"))
        raw = axis.values() if isinstance(axis, sweep_axes.NumberRange) else axis if isinstance(axis, list) else None
        if raw is None:
            problems.append((f"axes.{name}", "date windows are not a trainer parameter (a list or a range)"))
            continue
        for i, value in enumerate(raw):
            if name != "learning_rate" and isinstance(value, float):
                problems.append((f"axes.{name}[{i}]", f"{value!r} is not a whole number (an integer)"))
                continue
            try:
                TrainingParams.model_validate({name: value}, strict=name != "learning_rate")
            except ValueError as exc:
                message = str(exc).splitlines()[2].strip() if len(str(exc).splitlines()) > 2 else str(exc)
                problems.append((f"axes.{name}[{i}]", f"{value!r} is not allowed ({message.split(' [')[0]})"))
    return problems


def _command_problems(manifest: Manifest) -> Problems:
    """Every Ref:: is supplied by an axis, a parameter or agesweep; every name supplied is used."""
    container = manifest.job.container
    assert container is not None
    by_axis = {p: name for name, axis in manifest.axes.items() for p in sweep_axes.supplied_names(name, axis)}
    supplied = [*by_axis, *manifest.job.parameters, *BUILTIN_PARAMETERS]
    problems: Problems = []
    for i, part in enumerate(container.command):
        if len(refs_in([part])) > 1:
            problems.append((f"job.container.command[{i}]", f"{part!r} has more than one Ref:: (one per argument, as Batch replaces them)"))
        for ref in refs_in([part]):
            if ref not in supplied:
                problems.append((
                    f"job.container.command[{i}]",
                    f"Ref::{ref} is not supplied ({_hint(ref, supplied)}an axis, job.parameters, or agesweep's "
                    f"{', '.join(BUILTIN_PARAMETERS)})",
                ))
    used = set(refs_in(container.command))
    for name in sorted(used):
        longer = sorted(other for other in used if other != name and other.startswith(name))
        if longer:
            problems.append((
                "job.container.command",
                f"Ref::{name} is the start of Ref::{longer[0]} (Batch may replace one inside the other: "
                f"parameter names that do not start with one another)",
            ))
    for parameter, axis in by_axis.items():
        if parameter not in used:
            problems.append((f"axes.{axis}", f"{parameter!r} is not used by the command (add Ref::{parameter} to job.container.command)"))
    for name in manifest.job.parameters:
        if name not in used:
            problems.append((f"job.parameters.{name}", f"not used by the command (add Ref::{name} to job.container.command)"))
    return problems


def _environment_problems(manifest: Manifest, stack: Settings) -> Problems:
    container = manifest.job.container
    assert container is not None
    problems: Problems = []
    for name, value in container.environment.items():
        found = credential_problem(name, value)
        if found:
            problems.append((f"job.container.environment.{name}", found.split(": ", 1)[1]))
        if name in container.secrets:
            problems.append((f"job.container.environment.{name}", "also a secret (one or the other)"))
    for name, arn in container.secrets.items():
        if not stack.secret_allowed(arn):
            allowed = ", ".join(sorted(stack.allowed_secrets)) or "none"
            problems.append((
                f"job.container.secrets.{name}",
                f"{arn} is not allowed by this stack (its AllowedSecretArns parameter lists: {allowed})",
            ))
    return problems


def _image_problems(manifest: Manifest, stack: Settings) -> Problems:
    problems: Problems = []
    for path, image in (("job.image", manifest.job.image), ("job.container.image", getattr(manifest.job.container, "image", None))):
        if image is None or "@sha256:" in image:
            continue
        tag = image.rsplit(":", 1)[-1]
        if stack.require_image_digest:
            problems.append((path, f"{image!r} names a tag, which can move (this stack requires a digest: repository@sha256:<digest>)"))
        elif tag.lower() in MUTABLE_TAGS:
            problems.append((path, f"tag {tag!r} is moved by every push (a release tag or a digest)"))
    return problems


def points_of(manifest: Manifest) -> int:
    """How many points the axes make (ages not counted)."""
    return sweep_axes.point_count([sweep_axes.axis_length(a) for a in manifest.axes.values()], manifest.combine) if manifest.axes else 1

