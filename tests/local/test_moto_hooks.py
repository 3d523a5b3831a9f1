"""Local mode patches private names of the pinned moto: prove each still exists and is moto's own."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import moto

from agesweep.local import moto_hooks

ROOT = Path(__file__).resolve().parents[2]


def test_moto_is_the_pinned_version() -> None:
    local_mode = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["local"]
    pins = [re.search(r"==([\w.]+)", dep).group(1) for dep in local_mode if dep.startswith("moto[")]
    assert pins == [moto.__version__]


def test_every_patched_target_is_defined_by_moto() -> None:
    assert len(moto_hooks.MOTO_ORIGINALS) == len(moto_hooks.PATCHED_TARGETS)
    for qualified_name, original in moto_hooks.MOTO_ORIGINALS.items():
        assert callable(original), qualified_name
        assert original.__module__.startswith("moto."), (qualified_name, original.__module__)


def test_normalisation_stubs_are_still_empty_upstream() -> None:
    """If moto fills these stubs itself, our replacement is no longer needed: revisit the hook."""
    import inspect

    for name in ("StateTaskService._normalise_parameters", "StateTaskService._normalise_response"):
        body = inspect.getsource(moto_hooks.MOTO_ORIGINALS[name]).strip().splitlines()[-1].strip()
        assert body == "pass", name


def test_sync_poll_still_sleeps_through_the_module_time() -> None:
    """The poll hook replaces `time` inside moto's callback module: moto must still call
    time.sleep there between status checks of a .sync task."""
    import inspect

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback as module

    source = inspect.getsource(module.StateTaskServiceCallback._eval_sync)
    assert "time.sleep(_DELAY_SECONDS_SYNC_CONDITION_CHECK)" in source
    moto_hooks.install()
    assert isinstance(module.time, moto_hooks._SyncPollClock)
    assert module.time.monotonic() > 0  # everything but sleep is the real time module
