"""The stack's linters and validators, as CI runs them: sam validate --lint, cfn-lint, checkov, asl-validator."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, TEMPLATE, tool, tool_env

ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=300, **kwargs)


def test_sam_validate_lint_is_clean() -> None:
    done = run([tool("sam"), "validate", "--lint", "--template-file", str(TEMPLATE)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr


def test_cfn_lint_is_clean() -> None:
    done = run([tool("cfn-lint"), "--format", "parseable", str(TEMPLATE)])
    assert done.returncode == 0, f"cfn-lint findings:\n{done.stdout}{done.stderr}"


def test_checkov_has_no_failed_checks() -> None:
    done = run([tool("checkov"), "-f", str(TEMPLATE), "--config-file", ".checkov.yaml", "--output", "json"])
    report = json.loads(done.stdout)
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert failed == [] and done.returncode == 0, "\n".join(failed) or done.stderr
    # A scan that looked at nothing would also have no failures.
    assert report["summary"]["passed"] >= 50, report["summary"]


def test_every_checkov_skip_has_a_reason() -> None:
    config_text = (ROOT / ".checkov.yaml").read_text()
    skips = yaml.safe_load(config_text)["skip-check"]
    assert skips, "no skips: drop this test and the skip-check key together"
    for check_id in skips:
        line = next(row for row in config_text.splitlines() if re.match(rf"\s*-\s*{check_id}\b", row))
        reason = line.partition("#")[2].strip()
        assert len(reason) > 20, f"{check_id}: give a one-line reason after '#'"


# --- ASL -----------------------------------------------------------------------------------------

SAMPLE_ACCOUNT = "123456789012"
SAMPLE_REGION = "us-east-1"


def sample_value(value: Any, resources: dict[str, Any]) -> str:
    """What CloudFormation would put in for a DefinitionSubstitutions value, with a sample account."""
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    if "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        if resources[name]["Type"] == "AWS::Serverless::Function" and attribute == "Arn":
            return f"arn:aws:lambda:{SAMPLE_REGION}:{SAMPLE_ACCOUNT}:function:stack-{name}-AbC123"
    if "Ref" in value and resources.get(value["Ref"], {}).get("Type") == "AWS::Batch::JobQueue":
        return f"arn:aws:batch:{SAMPLE_REGION}:{SAMPLE_ACCOUNT}:job-queue/{value['Ref']}-AbC123"
    if "Ref" in value and resources.get(value["Ref"], {}).get("Type") == "AWS::SNS::Topic":
        return f"arn:aws:sns:{SAMPLE_REGION}:{SAMPLE_ACCOUNT}:stack-{value['Ref']}-AbC123"
    if "Ref" in value and resources.get(value["Ref"], {}).get("Type") == "AWS::S3::Bucket":
        return f"stack-{value['Ref'].lower()}-abc123"
    pytest.fail(f"teach sample_value about this DefinitionSubstitutions value: {value}")


def substituted_asl(asl_text: str, template: dict[str, Any]) -> str:
    """The definition as deployed: every ${Name} replaced like CloudFormation does."""
    subs = template["Resources"]["SweepStateMachine"]["Properties"]["DefinitionSubstitutions"]
    values = {name: sample_value(value, template["Resources"]) for name, value in subs.items()}
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], asl_text)


def asl_validator(definition_file: Path) -> subprocess.CompletedProcess[str]:
    if not ASL_VALIDATOR.exists():
        pytest.fail("node_modules/.bin/asl-validator is missing: run `npm ci` in the repository root")
    # The ARN check stays on: the definition is checked after substitution, as deployed.
    # (asl-validator 4.0.0's --no-arn-check flag is read under the wrong option name and has no effect.)
    return run(["npx", "--no-install", "asl-validator", "--json-path", str(definition_file)])


def test_asl_is_valid_for_asl_validator(asl_text: str, template: dict[str, Any], tmp_path: Path) -> None:
    deployed = tmp_path / "sweep.asl.json"
    deployed.write_text(substituted_asl(asl_text, template))
    done = asl_validator(deployed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is valid" in done.stdout


def test_asl_validator_rejects_a_broken_definition(asl_text: str, template: dict[str, Any], tmp_path: Path) -> None:
    """The validator really looks at the states: a dangling Next must fail."""
    definition = json.loads(substituted_asl(asl_text, template))
    definition["States"]["ValidateManifest"]["Next"] = "NoSuchState"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(definition))
    done = asl_validator(broken)
    assert done.returncode != 0
    assert "NoSuchState" in done.stdout + done.stderr
