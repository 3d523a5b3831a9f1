"""Slicing, age capping and the one-line errors for bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from training import data as data_module
from training import layout
from training.data import InputError, load_slice, standardise
from training.train import resolve_slice


def _load(base: Path, start: int = 10, end: int = 50, age: int = 55):
    return load_slice(base, start, end, age, layout.ENROLLMENT_MODEL_FILE)


def test_slice_selects_rows_and_standardises_within_it(tiny_inputs):
    data = _load(tiny_inputs, 10, 50)
    e = torch.load(tiny_inputs / layout.E_FILE)
    g = torch.load(tiny_inputs / layout.G_FILE)
    assert (data.start, data.stop, data.n_patients) == (10, 50, 40)
    assert torch.equal(data.exit_time, e[10:50])
    assert data.g.shape == (40, g.shape[1] + 1)  # sex appended
    torch.testing.assert_close(data.g[:, :-1], standardise(g[10:50]))
    torch.testing.assert_close(data.g.mean(dim=0), torch.zeros(g.shape[1] + 1), atol=1e-5, rtol=0)


def test_end_beyond_the_cohort_is_clipped(tiny_inputs):
    data = _load(tiny_inputs, 60, 10_000)
    assert (data.start, data.stop) == (60, 80)


def test_age_capping_hides_everything_after_the_age(tiny_inputs):
    age = 48
    data = _load(tiny_inputs, 0, 80, age)
    y = torch.load(tiny_inputs / layout.Y_FILE)[0:80]
    cap = age - layout.AGE_OFFSET
    assert torch.equal(data.exit_time_capped, torch.minimum(data.exit_time, torch.tensor(cap)))
    assert data.exit_time.max() > cap  # the fixture really has later exits to hide
    later = data.exit_time > cap
    assert not data.y_at_capped_exit[later].any()  # an onset after the age is not an event at it
    assert torch.equal(data.y_at_exit, y.gather(2, data.exit_time[..., None])[..., 0].bool())


@pytest.mark.parametrize(
    ("start", "end", "size", "index", "expected"),
    [
        (0, 10_000, 0, "3", (0, 10_000)),  # no slicing: the array index is ignored
        (0, 10_000, 2_500, "1", (2_500, 5_000)),
        (1_000, 9_000, 3_000, "2", (7_000, 9_000)),  # last child clipped to end_index
        (0, 500, 200, None, (0, 500)),  # slice_size without an array: the whole range
    ],
)
def test_array_index_selects_the_slice(start, end, size, index, expected):
    assert resolve_slice(start, end, size, index) == expected


@pytest.mark.parametrize(("start", "end", "size", "index"), [(0, 0, 0, None), (10, 5, 0, None), (0, 100, 50, "2")])
def test_empty_slices_are_rejected(start, end, size, index):
    with pytest.raises(InputError, match="empty slice"):
        resolve_slice(start, end, size, index)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: (d / layout.G_FILE).unlink(), "missing input file"),
        (lambda d: torch.save(torch.zeros(80, 5), d / layout.E_FILE), r"E_matrix.pt: expected shape \[80, 6\]"),
        (lambda d: torch.save(torch.zeros(80, 6, 52, 1), d / layout.Y_FILE), "expected 3 dimensions"),
        (lambda d: torch.save({"signature_refs": torch.zeros(4)}, d / layout.REFERENCES_FILE), "phi in"),
        (lambda d: (d / layout.COVARIATES_FILE).write_text("eid,age\n1,50\n"), "no 'sex' column"),
        (lambda d: torch.save(torch.full((80, 6), 99), d / layout.E_FILE), "exit times must lie in"),
    ],
)
def test_bad_inputs_name_the_problem(tiny_inputs, tmp_path, change, message):
    base = _copy(tiny_inputs, tmp_path / "in")
    change(base)
    with pytest.raises(InputError, match=message):
        _load(base)


def test_age_outside_the_range_and_start_beyond_the_cohort(tiny_inputs):
    with pytest.raises(InputError, match="outside 40..79"):
        _load(tiny_inputs, age=80)
    with pytest.raises(InputError, match="beyond the 80 patients"):
        _load(tiny_inputs, 80, 100)


def test_numpy_arrays_in_input_files_are_read(tiny_inputs, tmp_path):
    """The reference's files may hold numpy arrays; they load without unpickling arbitrary code."""
    base = _copy(tiny_inputs, tmp_path / "in")
    essentials = torch.load(base / layout.ESSENTIALS_FILE)
    torch.save(
        {"prevalence_t": essentials["prevalence_t"].numpy(), "disease_names": __import__("numpy").array(essentials["disease_names"])},
        base / layout.ESSENTIALS_FILE,
    )
    torch.save(torch.load(base / layout.G_FILE).numpy(), base / layout.G_FILE)
    data = _load(base)
    reference = _load(tiny_inputs)
    torch.testing.assert_close(data.prevalence, reference.prevalence)
    torch.testing.assert_close(data.g, reference.g)
    assert data.disease_names == reference.disease_names


def test_a_file_that_is_not_a_tensor_file_is_bad_input(tiny_inputs, tmp_path):
    base = _copy(tiny_inputs, tmp_path / "in")
    (base / layout.Y_FILE).write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="cannot read"):
        _load(base)


@pytest.mark.parametrize("form", ["zip", "numpy", "legacy"])
def test_y_is_reduced_chunk_by_chunk_from_any_file_form(tiny_inputs, tmp_path, monkeypatch, form):
    """Y is read a few rows at a time (mapped afresh per chunk when it can be); the result is
    that of reading it whole, whatever form the file has."""
    monkeypatch.setattr(data_module, "Y_CHUNK_ELEMENTS", 7 * 6 * 52)  # 7 rows a chunk: 6 chunks for 40 rows
    base = _copy(tiny_inputs, tmp_path / "in")
    y = torch.load(base / layout.Y_FILE)
    if form == "numpy":
        torch.save(y.numpy(), base / layout.Y_FILE)
    elif form == "legacy":
        torch.save(y, base / layout.Y_FILE, _use_new_zipfile_serialization=False)
    data = _load(base, 10, 50, age=55)
    rows, e = y[10:50], torch.load(base / layout.E_FILE)[10:50]
    assert torch.equal(data.y_at_exit, rows.gather(2, e[:, :, None])[:, :, 0].bool())
    assert torch.equal(data.y_at_capped_exit, rows.gather(2, e.clamp(max=25)[:, :, None])[:, :, 0].bool())
    torch.testing.assert_close(data.y_mean, rows.mean(dim=2), rtol=0, atol=1e-7)


def test_a_value_other_than_0_or_1_in_the_last_chunk_is_bad_input(tiny_inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "Y_CHUNK_ELEMENTS", 7 * 6 * 52)
    base = _copy(tiny_inputs, tmp_path / "in")
    y = torch.load(base / layout.Y_FILE)
    y[49, 2, 40] = 2.0
    torch.save(y, base / layout.Y_FILE)
    with pytest.raises(InputError, match="values must be 0/1"):
        _load(base, 10, 50)
