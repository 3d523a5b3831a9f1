"""Loading and checking one slice of the Aladyn inputs.

Tensors are memory-mapped, so a 10k-row slice of a 400k-patient cohort reads 10k rows; Y is
reduced at once to what training needs (Y at the exit times, mean over time), never kept whole.
Every problem with the inputs raises ``InputError`` with one line a person can act on.
"""

from __future__ import annotations

import csv
import itertools
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from training import layout

Y_CHUNK_ELEMENTS = 1 << 24  # Y cells read at a time (64 MB of float32)


class InputError(Exception):
    """Bad input (missing file, wrong shape, age out of range, empty slice): exit code 2."""


@dataclass
class SliceData:
    """The rows ``start .. stop`` of every input, capped at ``age``."""

    start: int
    stop: int
    age: int
    g: torch.Tensor  # [n, P+1] PRS + sex, standardised within the slice
    exit_time: torch.Tensor  # [n, D] long, E as given
    exit_time_capped: torch.Tensor  # [n, D] long, min(E, age - 30)
    y_at_exit: torch.Tensor  # [n, D] bool, Y[n, d, E]
    y_at_capped_exit: torch.Tensor  # [n, D] bool, Y[n, d, E_a]
    y_mean: torch.Tensor  # [n, D] float, mean over time of Y (initialisation)
    prevalence: torch.Tensor  # [D, T]
    disease_names: list[str]
    refs: torch.Tensor  # [K] or [K, T]
    phi: torch.Tensor  # [K+1, D, T]
    psi: torch.Tensor  # [K+1, D]

    @property
    def n_patients(self) -> int:
        return self.stop - self.start


def _numpy_globals() -> list:
    """numpy types a weights-only load may rebuild (the reference's files hold numpy arrays)."""
    import numpy as np  # lazily: only files that need it pay the import

    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return [np._core.multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def _load(path: Path) -> object:
    """torch.load without executing code from the file (weights_only), memory-mapped if possible."""
    if not path.is_file():
        raise InputError(f"missing input file: {path}")
    attempts = [{"mmap": True}, {}]
    for index, options in enumerate(attempts):
        try:
            return torch.load(path, map_location="cpu", weights_only=True, **options)
        except pickle.UnpicklingError:
            try:
                with torch.serialization.safe_globals(_numpy_globals()):
                    return torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # noqa: BLE001 - any unreadable file is bad input
                raise InputError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
        except RuntimeError as error:  # e.g. legacy (non-zip) format: mmap impossible, load plainly
            if index == len(attempts) - 1:
                raise InputError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
        except Exception as error:  # noqa: BLE001
            raise InputError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
    raise AssertionError("unreachable")


def _as_tensor(obj: object) -> object:
    """numpy arrays become tensors; anything else is returned for the caller to reject."""
    return torch.as_tensor(obj) if type(obj).__name__ == "ndarray" else obj


def _tensor(obj: object, what: str, ndim: int) -> torch.Tensor:
    obj = _as_tensor(obj)
    if not isinstance(obj, torch.Tensor):
        raise InputError(f"{what}: expected a tensor, found {type(obj).__name__}")
    if obj.dim() != ndim:
        raise InputError(f"{what}: expected {ndim} dimensions, found shape {list(obj.shape)}")
    return obj


def _key(obj: object, key: str, where: str) -> object:
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(f"{where}: no '{key}' entry")
    return obj[key]


def _shape(tensor: torch.Tensor, expected: tuple[int, ...], what: str) -> None:
    if tuple(tensor.shape) != expected:
        raise InputError(f"{what}: expected shape {list(expected)}, found {list(tensor.shape)}")


def read_sex(path: Path, start: int, stop: int) -> torch.Tensor:
    """The ``sex`` column of rows start..stop (0/1 or male/female), read without pandas."""
    if not path.is_file():
        raise InputError(f"missing input file: {path}")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "sex" not in reader.fieldnames:
            raise InputError(f"{path}: no 'sex' column (columns: {reader.fieldnames})")
        rows = list(itertools.islice(reader, start, stop))
    if len(rows) != stop - start:
        raise InputError(f"{path}: has {start + len(rows)} rows, the slice needs {stop}")
    words = {"male": 1.0, "m": 1.0, "female": 0.0, "f": 0.0}
    values = []
    for offset, row in enumerate(rows):
        text = (row["sex"] or "").strip().lower()
        try:
            values.append(words[text] if text in words else float(text))
        except ValueError:
            raise InputError(f"{path}: row {start + offset}: sex '{row['sex']}' is not 0/1 or male/female") from None
    return torch.tensor(values, dtype=torch.float32)


def standardise(columns: torch.Tensor) -> torch.Tensor:
    """Each column centred and scaled within the slice; a constant column becomes zeros."""
    std = columns.std(dim=0)
    return (columns - columns.mean(dim=0)) / torch.where(std > 0, std, torch.ones_like(std))


def _reduce_y(
    path: Path, start: int, n_times: int, exit_time: torch.Tensor, capped: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Y at the exit times, at the capped exit times, and its mean over time, for the rows
    ``start ..`` of ``exit_time``, read ``Y_CHUNK_ELEMENTS`` cells at a time. A memory-mapped
    file's pages count in the job's RSS until the map is dropped, so a mappable file is mapped
    afresh per chunk: at N = 10,000 x 348 x 52, reading Y whole peaked at 1.9 GB of RSS."""
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)

        def rows(r0: int, r1: int) -> torch.Tensor:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)[start + r0 : start + r1]
    except Exception:  # noqa: BLE001 - not mappable (legacy or numpy file): read once, as _load does
        whole = _tensor(_load(path), layout.Y_FILE, 3)

        def rows(r0: int, r1: int) -> torch.Tensor:
            return whole[start + r0 : start + r1]

    n, n_diseases = exit_time.shape
    at_exit = torch.empty(n, n_diseases, dtype=torch.bool)
    at_capped = torch.empty(n, n_diseases, dtype=torch.bool)
    mean = torch.empty(n, n_diseases, dtype=torch.float32)
    step = max(1, Y_CHUNK_ELEMENTS // (n_diseases * n_times))
    for r0 in range(0, n, step):
        r1 = min(r0 + step, n)
        y = rows(r0, r1)
        if ((y != 0) & (y != 1)).any():
            raise InputError(f"{layout.Y_FILE}: values must be 0/1")
        y = y != 0
        at_exit[r0:r1] = y.gather(2, exit_time[r0:r1, :, None])[:, :, 0]
        at_capped[r0:r1] = y.gather(2, capped[r0:r1, :, None])[:, :, 0]
        mean[r0:r1] = y.sum(dim=2, dtype=torch.float32) / n_times
        del y  # drops this chunk's map before the next is made
    return at_exit, at_capped, mean


def load_slice(base: Path, start: int, end: int, age: int, enrollment_model: str) -> SliceData:
    """Reads and checks rows ``start .. min(end, N)`` of every input and caps them at ``age``."""
    if not layout.AGE_MIN <= age <= layout.AGE_MAX:
        raise InputError(f"age {age} is outside {layout.AGE_MIN}..{layout.AGE_MAX}")
    if start < 0 or end <= start:
        raise InputError(f"empty slice: start_index {start}, end_index {end}")
    base = Path(base)
    missing = [name for name in (*layout.INPUT_FILES, enrollment_model) if not (base / name).is_file()]
    if missing:
        raise InputError(f"missing input file(s) in {base}: {', '.join(missing)}")

    y_all = _tensor(_load(base / layout.Y_FILE), layout.Y_FILE, 3)
    n_total, n_diseases, n_times = y_all.shape
    del y_all  # only its shape: Y is read chunk by chunk below
    stop = min(end, n_total)
    if stop <= start:
        raise InputError(f"empty slice: start_index {start} is beyond the {n_total} patients")
    cap = age - layout.AGE_OFFSET
    if cap >= n_times:
        raise InputError(f"age {age} needs time index {cap}, but Y has only {n_times} time points")

    e_all = _tensor(_load(base / layout.E_FILE), layout.E_FILE, 2)
    _shape(e_all, (n_total, n_diseases), layout.E_FILE)
    g_all = _tensor(_load(base / layout.G_FILE), layout.G_FILE, 2)
    if g_all.shape[0] != n_total:
        raise InputError(f"{layout.G_FILE}: expected {n_total} rows, found shape {list(g_all.shape)}")
    essentials = _load(base / layout.ESSENTIALS_FILE)
    prevalence = _tensor(_key(essentials, "prevalence_t", layout.ESSENTIALS_FILE), "prevalence_t", 2)
    _shape(prevalence, (n_diseases, n_times), "prevalence_t")
    names = list(_key(essentials, "disease_names", layout.ESSENTIALS_FILE))
    if len(names) != n_diseases:
        raise InputError(f"disease_names: expected {n_diseases} names, found {len(names)}")
    refs = _key(_load(base / layout.REFERENCES_FILE), "signature_refs", layout.REFERENCES_FILE)
    refs = _as_tensor(refs)
    if not isinstance(refs, torch.Tensor) or refs.dim() not in (1, 2):
        raise InputError("signature_refs: expected a [K] (or [K, T]) tensor")
    n_signatures = refs.shape[0]
    if refs.dim() == 2:
        _shape(refs, (n_signatures, n_times), "signature_refs")
    state = _key(_load(base / enrollment_model), "model_state_dict", enrollment_model)
    phi = _tensor(_key(state, "phi", enrollment_model), "phi", 3)
    psi = _tensor(_key(state, "psi", enrollment_model), "psi", 2)
    _shape(phi, (n_signatures + 1, n_diseases, n_times), f"phi in {enrollment_model}")
    _shape(psi, (n_signatures + 1, n_diseases), f"psi in {enrollment_model}")

    exit_time = e_all[start:stop].round().long() if e_all.is_floating_point() else e_all[start:stop].long()
    if exit_time.min() < 0 or exit_time.max() >= n_times:
        raise InputError(f"{layout.E_FILE}: exit times must lie in 0..{n_times - 1}")
    capped = exit_time.clamp(max=cap)
    y_at_exit, y_at_capped_exit, y_mean = _reduce_y(base / layout.Y_FILE, start, n_times, exit_time, capped)
    sex = read_sex(base / layout.COVARIATES_FILE, start, stop)
    g = standardise(torch.cat([g_all[start:stop].float(), sex[:, None]], dim=1))
    return SliceData(
        start=start,
        stop=stop,
        age=age,
        g=g,
        exit_time=exit_time,
        exit_time_capped=capped,
        y_at_exit=y_at_exit,
        y_at_capped_exit=y_at_capped_exit,
        y_mean=y_mean,
        prevalence=prevalence.float().clone(),
        disease_names=[str(name) for name in names],
        refs=refs.float().clone(),
        phi=phi.float().clone(),
        psi=psi.float().clone(),
    )
