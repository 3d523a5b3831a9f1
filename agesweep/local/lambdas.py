"""Lambda handlers run in this process: module loading, the function's environment, the context object,
and releasing powertools' loggers when local mode stops."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from agesweep.local.plumbing import Plumbing
from agesweep.local.template import FunctionSpec


@dataclass
class LambdaContext:
    """The context object the Lambda runtime hands a handler (powertools reads these fields)."""

    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline_ms: int = 0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


@contextlib.contextmanager
def function_env(fn: FunctionSpec, left_empty: set[str] | None = None) -> Iterator[None]:
    """os.environ with the function's variables, restored afterwards. A variable that was unset is
    left empty rather than removed: other threads copy os.environ (botocore's IMDS fetcher does, for
    every client moto's interpreter makes), and a key removed mid-copy raised KeyError in 1 of a
    10,000-point run's submissions. Settings and the handlers read an empty variable as unset."""
    saved = {key: os.environ.get(key) for key in fn.environment}
    os.environ.update(fn.environment)
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ[key] = "" if value is None else value
            if value is None and left_empty is not None:
                left_empty.add(key)  # removed by Lambdas.close, once nothing runs


def discard_metrics(module: ModuleType) -> None:
    """Drop the metrics an invocation added. Local mode disables powertools metrics
    (POWERTOOLS_METRICS_DISABLED), but disabled metrics still accumulate and powertools prints
    them to stdout every 100 values: a long local run's terminal got EMF JSON (WatchEfs runs
    every 2 s). In a real Lambda each invocation's flush empties them."""
    from aws_lambda_powertools import Metrics

    for value in vars(module).values():
        if isinstance(value, Metrics):
            value.clear_metrics()


class Lambdas:
    """The stack's functions, by physical name, each handler imported once (a warm container)."""

    def __init__(self, plumbing: Plumbing) -> None:
        self.plumbing = plumbing
        self.functions_by_name: dict[str, FunctionSpec] = {}
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.Lock()  # handlers read os.environ: one runs at a time
        self._left_empty: set[str] = set()  # variables function_env added (emptied after each call)

    def register(self, name: str, fn: FunctionSpec) -> None:
        self.functions_by_name[name] = fn
        with self._lock:  # initialise now, as provisioned concurrency would: no cold start mid-run
            self._module_for(fn)

    def _module_for(self, fn: FunctionSpec) -> ModuleType:
        module_file, _, _ = fn.handler.rpartition(".")
        key = f"{fn.logical_id}:{module_file}"
        if key not in self._modules:
            path = fn.code_dir / f"{module_file.replace('.', '/')}.py"
            spec = importlib.util.spec_from_file_location(f"agesweep_local_fn_{fn.logical_id}_{id(self)}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # pydantic resolves the handler's annotations through it
            # powertools binds its log handler to sys.stdout at import: send it to lambda.log
            with contextlib.redirect_stdout(self.plumbing.log_file), function_env(fn, self._left_empty):
                spec.loader.exec_module(module)
            self._modules[key] = module
        return self._modules[key]

    def invoke(self, function_name: str, function_arn: str, event: Any) -> tuple[str, bool, str]:
        """Run the function's real handler in-process: (payload, errored, logs) as moto expects."""
        fn = self.functions_by_name[function_name]
        if isinstance(event, (str, bytes)):
            event = json.loads(event or "{}")
        with self._lock:
            module = self._module_for(fn)
            handler = getattr(module, fn.handler.rpartition(".")[2])
            context = LambdaContext(
                function_name=function_name,
                invoked_function_arn=function_arn,
                deadline_ms=int(time.time() * 1000) + fn.timeout * 1000,
            )
            with function_env(fn, self._left_empty):
                try:
                    result = handler(event, context)
                except Exception as error:  # the Lambda runtime reports any exception this way
                    payload = {"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": []}
                    self.plumbing.log(f"{fn.logical_id} raised {type(error).__name__}: {error}")
                    return json.dumps(payload), True, ""
                finally:
                    discard_metrics(module)
        return json.dumps(result), False, ""

    def close(self) -> None:
        """Forget the handler modules (a later local cloud imports them afresh) and remove the
        variables the functions added, which nothing reads any more."""
        for key in self._left_empty:
            if os.environ.get(key) == "":
                os.environ.pop(key, None)
        self._left_empty.clear()
        for name in [name for name in sys.modules if name.startswith("agesweep_local_fn_")]:
            if name.endswith(f"_{id(self)}"):
                del sys.modules[name]

    def release_powertools_loggers(self) -> None:
        """Powertools keeps its logging.Logger (per service name) configured for the process; unbind
        it from this log file so the next local cloud's handlers configure it afresh."""
        from aws_lambda_powertools.logging.constants import (
            LOGGER_ATTRIBUTE_POWERTOOLS_HANDLER,
            LOGGER_ATTRIBUTE_PRECONFIGURED,
        )

        log_file = self.plumbing.log_file
        for name in list(logging.Logger.manager.loggerDict):
            logger = logging.getLogger(name)
            ours = [h for h in logger.handlers if getattr(h, "stream", None) is log_file]
            if ours:
                for handler in ours:
                    logger.removeHandler(handler)
                for attribute in (LOGGER_ATTRIBUTE_PRECONFIGURED, LOGGER_ATTRIBUTE_POWERTOOLS_HANDLER):
                    if hasattr(logger, attribute):
                        delattr(logger, attribute)
