"""Problems a new user hit (issue: the first hour): each reported at once, in words, with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from agesweep.errors import ManifestInvalid, SettingsInvalid
from agesweep.manifest import parse_manifest
from agesweep.manifest_loading import MAX_MANIFEST_BYTES
from agesweep.manifest_source import read_manifest_file
from agesweep.settings import Settings


def problems(text: str) -> list[str]:
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(text.encode(), "m.yaml")
    return caught.value.problems


def test_duplicate_ages_overlaps_and_an_inverted_slice_are_reported_together() -> None:
    found = problems(
        "ages: [40, 41, 41, 90, 12]\nslices:\n  - {start_index: 0, end_index: 100}\n"
        "  - {start_index: 50, end_index: 150}\n  - {start_index: 300, end_index: 200}\n"
    )
    assert found == [
        "ages: 12, 90 outside the allowed ages (40..79); 41 listed twice (each age once)",
        "slices[2]: start_index 300 is not below end_index 200 (start_index < end_index)",
        "slices: [1] 50..150 overlaps [0] 0..100 (slices sorted by start_index, each starting at or after the previous end_index)",
    ]


def test_overlap_alone_is_reported_once() -> None:
    found = problems("ages: [40]\nslices: [{start_index: 0, end_index: 100}, {start_index: 50, end_index: 150}]\n")
    assert [p for p in found if "overlaps" in p] == [
        "slices: [1] 50..150 overlaps [0] 0..100 (slices sorted by start_index, each starting at or after the previous end_index)"
    ]


def test_transposed_letters_suggest_the_field_they_spell() -> None:
    found = problems("agse: [40]\nslices: [{start_index: 0, end_index: 10}]\n")
    assert any(p.startswith("agse: unknown field 'agse' (did you mean 'ages'?") for p in found), found


def test_an_empty_manifest_says_so() -> None:
    assert problems("null\n") == ["manifest: the file is empty (or only null) (a mapping of manifest fields, e.g. ages: ...)"]
    assert problems("just text\n") == ["manifest: top level is text (a mapping of manifest fields, e.g. ages: ...)"]


def test_yes_for_a_number_explains_yaml_booleans() -> None:
    found = problems("ages: [40]\nslices: [{start_index: 0, end_index: 10}]\ntolerated_failure_percent: yes\n")
    assert found == ["tolerated_failure_percent: true is not a number (a number; YAML reads yes/no/on/off as true/false)"]


def test_an_oversized_file_is_reported_with_its_real_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (2 * 1024 * 1024))
    with pytest.raises(ManifestInvalid) as caught:
        read_manifest_file(big)
    assert caught.value.problems == [f"manifest: 2,097,152 bytes is too large (at most {MAX_MANIFEST_BYTES:,} bytes)"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AGE_MIN": "abc"}, "AGE_MIN: 'abc' is not allowed (Input should be a valid integer, unable to parse string as an integer)"),
        ({"AGE_MIN": "80", "AGE_MAX": "40"}, "AGE_MIN 80 is above AGE_MAX 40"),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsInvalid) as caught:
        Settings.from_env(env)
    assert caught.value.problems == [expected]
