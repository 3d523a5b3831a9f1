"""Read template.yaml the way CloudFormation would, so local mode builds the stack that `sam deploy` ships.

Only what local mode needs is interpreted: the Lambda functions (code folder, handler, merged
environment), the state machine (definition file + substitutions), the EventBridge rules, the
Batch job definition and the SNS topic. Intrinsic functions are resolved against the physical
names local mode gives each resource; there is no second copy of any of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr",
}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form tags (!Ref, !GetAtt, ...)."""


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = _SHORT_TAGS.get(tag_suffix)
    if name is None:
        raise yaml.constructor.ConstructorError(None, None, f"unknown tag !{tag_suffix}", node.start_mark)
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML template, short-form tags included."""
    template: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return template


@dataclass(frozen=True)
class Pseudo:
    """The pseudo parameters local mode reports for its one-machine "account"."""

    region: str = "us-east-1"
    account_id: str = "123456789012"
    stack_name: str = "agesweep-local"
    partition: str = "aws"


class Resolver:
    """Resolves intrinsic functions given each resource's physical id and attributes."""

    def __init__(
        self,
        template: Mapping[str, Any],
        pseudo: Pseudo,
        physical_id: Callable[[str], str],
        attribute: Callable[[str, str], str],
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.pseudo = pseudo
        self._physical_id = physical_id
        self._attribute = attribute
        self.parameters = {
            name: str((parameter_overrides or {}).get(name, spec.get("Default", "")))
            for name, spec in (template.get("Parameters") or {}).items()
        }
        self._conditions: dict[str, bool] = {}

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.pseudo.region,
            "AWS::AccountId": self.pseudo.account_id,
            "AWS::StackName": self.pseudo.stack_name,
            "AWS::Partition": self.pseudo.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
            "AWS::StackId": f"arn:aws:cloudformation:{self.pseudo.region}:{self.pseudo.account_id}:stack/{self.pseudo.stack_name}/local",
        }
        if name in pseudo:
            return pseudo[name]  # type: ignore[return-value]
        if name in self.parameters:
            return self.parameters[name]
        return self._physical_id(name)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(self.resolve(variables[expr]))
            if "." in expr and not expr.startswith("AWS::"):
                logical, attr = expr.split(".", 1)
                return self._attribute(logical, attr)
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        """Return `node` with every intrinsic function evaluated (AWS::NoValue entries dropped)."""
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            intrinsic = self._INTRINSICS.get(key)
            if intrinsic is not None:
                return intrinsic(self, value)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    # ------------------------------------------------------------------ one method per intrinsic
    def _fn_ref(self, value: str) -> Any:
        resolved = self.ref(value)
        kind = str(((self.template.get("Parameters") or {}).get(value) or {}).get("Type", ""))
        if resolved is not None and (kind == "CommaDelimitedList" or kind.startswith("List<")):
            return resolved.split(",")  # as CloudFormation: a list parameter is a list ("" → [""])
        return _NO_VALUE if resolved is None else resolved

    def _fn_get_att(self, value: Any) -> str:
        logical, attr = value if isinstance(value, list) else value.split(".", 1)
        return self._attribute(logical, attr)

    def _fn_sub(self, value: Any) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
        return self._sub(text, variables)

    def _fn_join(self, value: Any) -> str:
        sep, parts = value
        return str(sep.join(str(part) for part in self.resolve(parts)))

    def _fn_if(self, value: Any) -> Any:
        name, when_true, when_false = value
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_equals(self, value: Any) -> bool:
        left, right = self.resolve(value)
        return str(left) == str(right)

    def _fn_not(self, value: Any) -> bool:
        return not self.resolve(value[0])

    def _fn_and(self, value: Any) -> bool:
        return all(self.resolve(value))

    def _fn_or(self, value: Any) -> bool:
        return any(self.resolve(value))

    def _fn_condition(self, value: str) -> bool:
        return self.condition(value)

    def _fn_select(self, value: Any) -> Any:
        index, items = value
        return self.resolve(items)[int(self.resolve(index))]

    def _fn_split(self, value: Any) -> list[str]:
        sep, text = value
        return str(self.resolve(text)).split(sep)

    def _fn_get_azs(self, value: Any) -> list[str]:
        return [f"{self.pseudo.region}{suffix}" for suffix in "abc"]

    _INTRINSICS: Mapping[str, Callable[[Resolver, Any], Any]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::Join": _fn_join,
        "Fn::If": _fn_if,
        "Fn::Equals": _fn_equals,
        "Fn::Not": _fn_not,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Condition": _fn_condition,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::GetAZs": _fn_get_azs,
    }


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    mount_paths: list[str] = field(default_factory=list)  # FileSystemConfigs' LocalMountPath (EFS)


@dataclass
class RuleSpec:
    logical_id: str
    event_pattern: dict[str, Any]
    targets: list[dict[str, Any]]
    schedule_expression: str | None = None  # a scheduled rule (it has no event pattern)


@dataclass
class JobDefinitionSpec:
    logical_id: str
    container_properties: dict[str, Any]
    parameters: dict[str, str]
    retry_strategy: dict[str, Any]
    timeout: dict[str, Any]
    propagate_tags: bool
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class StackSpec:
    """What local mode builds, read from template.yaml and resolved to local physical names."""

    root: Path
    functions: dict[str, FunctionSpec]
    state_machine_logical_id: str
    definition: str
    rules: dict[str, RuleSpec]
    job_definition: JobDefinitionSpec
    job_queue_logical_id: str  # the spot-first queue (the one the validate Lambda plans with)
    topic_logical_id: str
    bucket_logical_id: str
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, str]]
    job_queue_logical_ids: list[str] = field(default_factory=list)  # every queue, spot-first first


def _of_type(resources: Mapping[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in resources.items() if res.get("Type") == type_name}


def _single(resources: Mapping[str, Any], type_name: str) -> str:
    found = list(_of_type(resources, type_name))
    if len(found) != 1:
        raise ValueError(f"template.yaml must have exactly one {type_name}; found {found or 'none'}")
    return found[0]


def _job_queues(resources: Mapping[str, Any]) -> list[str]:
    """The job queues, the one the validate Lambda plans with (its JOB_QUEUE_ARN) first."""
    queues = sorted(_of_type(resources, "AWS::Batch::JobQueue"))
    if not queues:
        raise ValueError("template.yaml must have an AWS::Batch::JobQueue")
    planned: set[str] = set()
    for res in _of_type(resources, "AWS::Serverless::Function").values():
        variables = ((res.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        ref = variables.get("JOB_QUEUE_ARN")
        if isinstance(ref, dict) and "Ref" in ref:
            planned.add(str(ref["Ref"]))
    return sorted(queues, key=lambda lid: (lid not in planned, lid))


def read_stack(root: Path, resolver_factory: Callable[[dict[str, Any]], Resolver]) -> StackSpec:
    """Read template.yaml under `root` into a StackSpec, intrinsics resolved by the given resolver."""
    template = load_template(root / "template.yaml")
    resolver = resolver_factory(template)
    resources: dict[str, dict[str, Any]] = template["Resources"]
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    global_env = ((globals_fn.get("Environment") or {}).get("Variables")) or {}

    functions: dict[str, FunctionSpec] = {}
    for logical_id, res in _of_type(resources, "AWS::Serverless::Function").items():
        props = res.get("Properties") or {}
        env = {**global_env, **((props.get("Environment") or {}).get("Variables") or {})}
        functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=root / str(props.get("CodeUri", globals_fn.get("CodeUri", "."))),
            handler=str(props.get("Handler", globals_fn.get("Handler", "app.lambda_handler"))),
            environment={k: str(v) for k, v in resolver.resolve(env).items()},
            timeout=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
            mount_paths=[str(c["LocalMountPath"]) for c in props.get("FileSystemConfigs") or []],
        )

    sm_id = _single(resources, "AWS::Serverless::StateMachine")
    sm_props = resources[sm_id]["Properties"]
    substitutions = resolver.resolve(sm_props.get("DefinitionSubstitutions") or {})
    definition_text = (root / sm_props["DefinitionUri"]).read_text(encoding="utf-8")
    missing = sorted(set(re.findall(r"\$\{(\w+)\}", definition_text)) - set(substitutions))
    if missing:
        raise ValueError(f"{sm_props['DefinitionUri']} uses substitutions the template does not provide: {missing}")
    definition = re.sub(r"\$\{(\w+)\}", lambda m: str(substitutions[m.group(1)]), definition_text)
    json.loads(definition)

    rules = {
        logical_id: RuleSpec(
            logical_id=logical_id,
            event_pattern=resolver.resolve(res["Properties"].get("EventPattern") or {}),
            targets=resolver.resolve(res["Properties"].get("Targets") or []),
            schedule_expression=res["Properties"].get("ScheduleExpression"),
        )
        for logical_id, res in _of_type(resources, "AWS::Events::Rule").items()
    }

    jd_id = _single(resources, "AWS::Batch::JobDefinition")
    jd_props = resolver.resolve(resources[jd_id]["Properties"])
    job_definition = JobDefinitionSpec(
        logical_id=jd_id,
        container_properties=jd_props.get("ContainerProperties") or {},
        parameters={k: str(v) for k, v in (jd_props.get("Parameters") or {}).items()},
        retry_strategy=jd_props.get("RetryStrategy") or {},
        timeout=jd_props.get("Timeout") or {},
        propagate_tags=bool(jd_props.get("PropagateTags", False)),
        tags={k: str(v) for k, v in (jd_props.get("Tags") or {}).items()},
    )

    queues = _job_queues(resources)
    return StackSpec(
        root=root,
        functions=functions,
        state_machine_logical_id=sm_id,
        definition=definition,
        rules=rules,
        job_definition=job_definition,
        job_queue_logical_id=queues[0],
        job_queue_logical_ids=queues,
        topic_logical_id=_single(resources, "AWS::SNS::Topic"),
        bucket_logical_id=next(
            lid for lid, res in _of_type(resources, "AWS::S3::Bucket").items()
            if ((res.get("Properties") or {}).get("NotificationConfiguration") or {}).get("EventBridgeConfiguration")
        ),
        resources=resources,
        outputs={
            key: {"Value": str(resolver.resolve(value["Value"])), "Description": value.get("Description", key)}
            for key, value in (template.get("Outputs") or {}).items()
        },
    )
