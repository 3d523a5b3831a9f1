"""The bad-input corpus: every file in invalid_manifests/ must be rejected with the problems listed
in expected.json, each problem one line `field.path: what is wrong (what is allowed)`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agesweep.errors import ManifestInvalid
from agesweep.plan import validate_and_plan
from agesweep.settings import Settings

CORPUS = Path(__file__).parent / "invalid_manifests"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
PROBLEM_LINE = re.compile(r"^[A-Za-z_][^\s:]*(?::[^\s:]+)*: \S.* \(.+\)$")


def _problems(name: str) -> list[str]:
    spec = EXPECTED[name]
    stack = Settings.model_validate(spec.get("stack", {}))
    with pytest.raises(ManifestInvalid) as caught:
        validate_and_plan((CORPUS / name).read_bytes(), name, stack, run_id="corpus-0123456789ab")
    return caught.value.problems


def test_corpus_is_complete() -> None:
    files = {p.name for p in CORPUS.iterdir()} - {"expected.json"}
    assert files == set(EXPECTED), "every corpus file needs expectations, every expectation a file"
    assert len(files) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rejected_with_every_expected_problem(name: str) -> None:
    problems = _problems(name)
    for path, text in EXPECTED[name]["expect"]:
        matching = [p for p in problems if p.startswith(f"{path}: ") and text in p]
        assert matching, f"no problem `{path}: ...{text}...` in:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_problem_is_one_readable_line(name: str) -> None:
    for problem in _problems(name):
        assert "\n" not in problem and "Traceback" not in problem
        assert PROBLEM_LINE.match(problem), f"not `field.path: what (allowed)`: {problem!r}"


def test_many_problems_are_reported_at_once() -> None:
    assert len(_problems("many_problems.yaml")) >= 7


def test_oversized_file_is_rejected_before_parsing() -> None:
    raw = b"ages: [40]\nslices: [{start_index: 0, end_index: 1}]\n" + b"#" * (1024 * 1024)
    with pytest.raises(ManifestInvalid) as caught:
        validate_and_plan(raw, "big.yaml", Settings(), run_id="big-0123456789ab")
    assert caught.value.problems == [f"manifest: {len(raw):,} bytes is too large (at most 1,048,576 bytes)"]
