"""What every part of local mode shares: clients of the local endpoint, the local-mode log, and the
background threads that deliveries run on."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from botocore.config import Config

from agesweep import aws

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Plumbing:
    """Clients of one local endpoint, one log file (lambda.log) and the background threads."""

    def __init__(self, endpoint: str, region: str, log_path: Path) -> None:
        self.endpoint = endpoint
        self.region = region
        self.log_path = log_path
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._log_file: IO[str] | None = None

    def client(self, service: str) -> Any:
        """A boto3 client of the local endpoint (cached: clients are thread-safe and slow to build)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = aws.new_client(
                    service,
                    endpoint_url=self.endpoint,
                    region_name=self.region,
                    aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=50),
                )
            return self._clients[service]

    # ------------------------------------------------------------------ the log
    def open_log(self) -> None:
        self._log_file = self.log_path.open("a", encoding="utf-8", buffering=1)

    def close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()

    @property
    def log_file(self) -> IO[str]:
        """The open lambda.log (handlers' stdout and powertools loggers write here)."""
        if self._log_file is None:
            raise RuntimeError("the local-mode log is not open")
        return self._log_file

    def log(self, line: str) -> None:
        self.log_file.write(f"{dt.datetime.now(dt.UTC).isoformat()} {line}\n")

    def thread_exception(self, args: threading.ExceptHookArgs) -> None:
        """threading.excepthook while local mode runs: a dying helper thread's traceback goes to the log."""
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        self.log(f"thread {getattr(args.thread, 'name', '?')} died:\n{text}")

    # ------------------------------------------------------------------ background work
    def spawn(self, target: Callable[..., object], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Wait for background deliveries (alerts, events) started so far to finish."""
        deadline = time.monotonic() + timeout_s
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
