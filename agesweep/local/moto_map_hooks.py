"""The hooks local mode needs for Map states on moto 5.2.5 (agesweep.local.moto_hooks applies them).

- Defect: a Map's iteration workers take their next item by calling themselves
  (`_eval_pool` is tail-recursive), so a worker dies at Python's recursion limit after about 950
  items and the Map waits for it forever (the execution stays RUNNING). The loop below does the
  same steps without the recursion.
- Gap: a Distributed Map's ResultWriter writes only an empty manifest.json (moto's "TODO: generate
  result files"). Write what AWS writes: SUCCEEDED_0.json / FAILED_0.json, each an array of child
  executions with the iteration's result as its `Output` (a JSON string), and a manifest.json
  that lists them.
"""

from __future__ import annotations

import json
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
    DistributedItemProcessorWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import IterationWorker
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3 import (
    ResourceEvalS3,
)

MAP_TARGETS: list[tuple[type, str]] = [
    (IterationWorker, "_eval_pool"),
    (DistributedItemProcessorWorker, "_eval_pool"),
    (ResourceEvalS3, "_handle_put_object"),
    (ResourceEvalS3, "_get_s3_client"),
]


def _eval_pool_loop(self: Any, job: Any, worker_frame: Any, *, distributed: bool) -> None:
    """moto's `_eval_pool` (inline: IterationWorker; distributed: its own frames), as a loop."""
    close = worker_frame.delete_frame if distributed else worker_frame.close_frame
    end = self._env.delete_frame if distributed else self._env.close_frame
    while job is not None:
        job_frame = worker_frame.open_inner_frame()
        self._eval_job(env=job_frame, job=job)
        close(job_frame)
        if isinstance(job.job_output, Exception) or self.stopped():
            end(worker_frame)
            self._job_pool.close_job(job)
            return
        next_job = self._job_pool.next_job()
        if next_job is None:
            if not distributed:  # non-faulty terminal iteration events are the source of the next states
                worker_frame.event_history_context.source_event_id = job_frame.event_history_context.last_published_event_id
            end(worker_frame)
            self._job_pool.close_job(job)
            return
        self._job_pool.close_job(job)
        job = next_job
    end(worker_frame)


def hook_iteration_loop() -> None:
    def inline_pool(self: IterationWorker, job: Any, worker_frame: Any) -> None:
        _eval_pool_loop(self, job, worker_frame, distributed=False)

    def distributed_pool(self: DistributedItemProcessorWorker, job: Any, worker_frame: Any) -> None:
        _eval_pool_loop(self, job, worker_frame, distributed=True)

    IterationWorker._eval_pool = inline_pool  # type: ignore[method-assign]  # the hook itself
    DistributedItemProcessorWorker._eval_pool = distributed_pool  # type: ignore[method-assign]  # the hook itself


def result_files(map_run_arn: str, results: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The child-execution records AWS's ResultWriter writes, by file status (null results: FAILED)."""
    execution = map_run_arn.replace(":mapRun:", ":execution:", 1)
    files: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": []}
    for index, result in enumerate(results):
        record: dict[str, Any] = {"ExecutionArn": f"{execution}:{index}", "Name": str(index), "MapRunArn": map_run_arn}
        if result is None:
            files["FAILED"].append({**record, "Status": "FAILED"})
        else:
            files["SUCCEEDED"].append({**record, "Status": "SUCCEEDED", "Output": json.dumps(result),
                                       "OutputDetails": {"Included": True}})
    return files


def hook_result_writer() -> None:
    def _handle_put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        results = env.stack.pop()
        s3 = ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part, state_credentials=state_credentials)
        map_run_arn = env.map_run_record_pool_manager.get_all().pop().map_run_arn
        prefix = parameters["Prefix"] + ("/" if parameters["Prefix"] and not parameters["Prefix"].endswith("/") else "")
        folder = f"{prefix}{map_run_arn.split(':')[-1]}/"
        listed: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for status, records in result_files(map_run_arn, list(results or [])).items():
            if records:
                body = json.dumps(records).encode()
                key = f"{folder}{status}_0.json"
                s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=body)
                listed[status].append({"Key": key, "Size": len(body)})
        manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": map_run_arn, "ResultFiles": listed}
        key = f"{folder}manifest.json"
        s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=json.dumps(manifest, indent=2).encode())
        env.stack.append({"MapRunArn": map_run_arn, "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": key}})

    ResourceEvalS3._handle_put_object = staticmethod(_handle_put_object)  # type: ignore[method-assign]  # the hook itself
