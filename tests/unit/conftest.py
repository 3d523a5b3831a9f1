"""Env for unit tests, set before any handler module is imported (powertools reads it at import)."""

from __future__ import annotations

import os

# Fake credentials and a fixed region: tests talk to moto only, never to a real account.
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_SECURITY_TOKEN"] = "testing"
os.environ["AWS_SESSION_TOKEN"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ["POWERTOOLS_TRACE_DISABLED"] = "1"
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "agesweep")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "agesweep")
