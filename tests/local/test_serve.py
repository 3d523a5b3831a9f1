"""`agesweep local --serve`: the aws CLI drives the local stack like a deployed one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.local.conftest import write_manifest

AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"


def _aws(endpoint: str, *args: str) -> dict:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)
    out = subprocess.run(
        [AWS, "--endpoint-url", endpoint, "--output", "json", *args], env=env, check=True, capture_output=True, text=True, timeout=60
    )
    return json.loads(out.stdout) if out.stdout.strip() else {}


def test_serve_lets_the_aws_cli_start_and_follow_a_run(tmp_path: Path, data_dir: Path) -> None:
    workdir = tmp_path / "serve"
    server = subprocess.Popen(
        [sys.executable, "-m", "agesweep.cli", "local", "--serve", "--workdir", str(workdir), "--data", str(data_dir), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        endpoint_file = workdir / "endpoint.json"
        deadline = time.monotonic() + 60
        while not endpoint_file.exists():
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        names = json.loads(endpoint_file.read_text())
        endpoint = names["endpoint"]
        manifest = write_manifest(tmp_path / "cli.yaml", [45], run_name="cli", epochs=1)

        subprocess.run(
            [AWS, "--endpoint-url", endpoint, "s3", "cp", str(manifest), f"s3://{names['bucket']}/manifests/cli.yaml"],
            env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"},
            check=True, capture_output=True, timeout=60,
        )
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline:
            executions = _aws(endpoint, "stepfunctions", "list-executions", "--state-machine-arn", names["state_machine"])["executions"]
            if executions:
                described = _aws(endpoint, "stepfunctions", "describe-execution", "--execution-arn", executions[0]["executionArn"])
                status = described["status"]
                if status != "RUNNING":
                    break
            time.sleep(0.5)
        assert status == "SUCCEEDED"
        assert executions[0]["name"].startswith("cli-")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
