"""Reading ``template.yaml`` for the local runtime: CloudFormation YAML tags, parameters, conditions, intrinsic
functions and SAM ``Globals``.

The runtime resolves the template the way CloudFormation would, against the physical names and attributes of the
resources it creates in moto, so the functions run locally with exactly the configuration they get when deployed.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_TAGS = {
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
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Cidr": "Fn::Cidr",
    "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString",
}


class _Loader(yaml.SafeLoader):
    pass


def _make_constructor(name: str) -> Callable[[yaml.Loader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _tag, _name in _TAGS.items():
    _Loader.add_constructor(f"!{_tag}", _make_constructor(_name))


def load_template(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass with CloudFormation tags
    if not isinstance(data, dict) or "Resources" not in data:
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return data


class TemplateError(Exception):
    pass


def _text(value: Any) -> str:
    """A scalar as CloudFormation sees it: YAML booleans are the strings "true" and "false"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


NO_VALUE = object()


@dataclass
class ResourceState:
    """What the runtime knows of a resource after creating it: its Ref value and its attributes."""

    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)


class Resolver:
    """Evaluates parameters, conditions and intrinsic functions of one template."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, Any] | None = None,
        region: str = "us-east-1",
        account: str = "123456789012",
        stack_name: str = "leadpipe-local",
    ) -> None:
        self.template = template
        self.region = region
        self.account = account
        self.stack_name = stack_name
        self.parameters = self._parameters(parameters or {})
        self.resources: dict[str, ResourceState] = {}
        self._conditions: dict[str, bool] = {}

    # -------------------------------------------------------------------------------------------- parameters

    def _parameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
        declared = self.template.get("Parameters", {}) or {}
        unknown = set(given) - set(declared)
        if unknown:
            raise TemplateError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in given:
                value = given[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no default and no value was given")
            value = _text(value)
            allowed = spec.get("AllowedValues")
            if allowed is not None and value not in [_text(a) for a in allowed]:
                raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
            pattern = spec.get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, value):
                raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
            if spec.get("Type") == "Number":
                try:
                    number = float(value)
                except ValueError:
                    raise TemplateError(f"parameter {name}={value!r} is not a number") from None
                if "MinValue" in spec and number < float(spec["MinValue"]):
                    raise TemplateError(f"parameter {name}={value} is below {spec['MinValue']}")
                if "MaxValue" in spec and number > float(spec["MaxValue"]):
                    raise TemplateError(f"parameter {name}={value} is above {spec['MaxValue']}")
            values[name] = value
        return values

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
            "AWS::NotificationARNs": [],
        }.get(name)

    # -------------------------------------------------------------------------------------------- conditions

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {}) or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def active(self, logical_id: str) -> bool:
        resource = self.template["Resources"][logical_id]
        name = resource.get("Condition")
        return True if name is None else self.condition(name)

    # -------------------------------------------------------------------------------------------- intrinsics

    def references(self, value: Any) -> set[str]:
        """Logical ids of resources that ``value`` refers to (Ref, GetAtt, Sub)."""
        found: set[str] = set()
        resources = self.template["Resources"]

        def walk(v: Any) -> None:
            if isinstance(v, dict):
                if len(v) == 1:
                    ((key, arg),) = v.items()
                    if key == "Ref" and isinstance(arg, str) and arg in resources:
                        found.add(arg)
                    elif key == "Fn::GetAtt":
                        target = arg[0] if isinstance(arg, list) else str(arg).split(".")[0]
                        if target in resources:
                            found.add(target)
                    elif key == "Fn::Sub":
                        text, local = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
                        for ref in re.findall(r"\$\{([^!}][^}]*)\}", text):
                            if ref in local:  # a variable of the Sub's own map, not a resource
                                continue
                            base = ref.split(".")[0]
                            if base in resources:
                                found.add(base)
                for item in v.values():
                    walk(item)
            elif isinstance(v, list):
                for item in v:
                    walk(item)

        walk(value)
        return found

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            out = [self.resolve(v) for v in value]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = self._FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, arg)
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name in self.parameters:
            value = self.parameters[name]
            spec = self.template.get("Parameters", {}).get(name, {})
            if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == "CommaDelimitedList":
                return value.split(",")
            return value
        if name.startswith("AWS::"):
            value = self.pseudo(name)
            if value is None:
                raise TemplateError(f"Ref {name}: no such pseudo parameter")
            return value
        if name in self.resources:
            return self.resources[name].ref
        if name in self.template["Resources"]:
            raise TemplateError(f"Ref {name}: the resource is not created (yet, or its condition is false)")
        raise TemplateError(f"Ref {name}: no such parameter or resource")

    def _getatt(self, arg: Any) -> Any:
        logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
        attribute = self.resolve(attribute)
        state = self.resources.get(logical)
        if state is None:
            raise TemplateError(f"GetAtt {logical}.{attribute}: the resource is not created")
        if attribute not in state.attributes:
            raise TemplateError(f"GetAtt {logical}.{attribute}: attribute not supported locally")
        return state.attributes[attribute]

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr and expr.split(".", 1)[0] in self.template["Resources"]:
                return str(self._getatt(expr.split(".", 1)))
            return str(self._ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _join(self, arg: Any) -> str:
        sep, items = arg
        return str(sep).join(str(i) for i in self.resolve(items))

    def _select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, arg: Any) -> list[str]:
        sep, text = arg
        return str(self.resolve(text)).split(sep)

    def _if(self, arg: Any) -> Any:
        name, yes, no = arg
        return self.resolve(yes if self.condition(name) else no)

    def _equals(self, arg: Any) -> bool:
        a, b = (self.resolve(x) for x in arg)
        return _text(a) == _text(b)

    def _find_in_map(self, arg: Any) -> Any:
        name, top, second = (self.resolve(x) for x in arg)
        return self.template["Mappings"][name][top][second]

    def _unsupported(self, name: str) -> Callable[[Resolver, Any], Any]:
        def fail(_self: Resolver, _arg: Any) -> Any:
            raise TemplateError(f"{name} is not supported by the local runtime")

        return fail

    _FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
        "Ref": lambda self, a: self._ref(a),
        "Fn::GetAtt": lambda self, a: self._getatt(a),
        "Fn::Sub": lambda self, a: self._sub(a),
        "Fn::Join": lambda self, a: self._join(a),
        "Fn::Select": lambda self, a: self._select(a),
        "Fn::Split": lambda self, a: self._split(a),
        "Fn::If": lambda self, a: self._if(a),
        "Fn::Equals": lambda self, a: self._equals(a),
        "Fn::Not": lambda self, a: not self.resolve(a[0]),
        "Fn::And": lambda self, a: all(self.resolve(x) for x in a),
        "Fn::Or": lambda self, a: any(self.resolve(x) for x in a),
        "Condition": lambda self, a: self.condition(a),
        "Fn::FindInMap": lambda self, a: self._find_in_map(a),
        "Fn::Base64": lambda self, a: base64.b64encode(str(self.resolve(a)).encode()).decode(),
        "Fn::GetAZs": lambda self, a: [f"{self.region}{z}" for z in "abc"],
        "Fn::ImportValue": lambda self, a: self._unsupported("Fn::ImportValue")(self, a),
        "Fn::Cidr": lambda self, a: self._unsupported("Fn::Cidr")(self, a),
        "Fn::Length": lambda self, a: self._unsupported("Fn::Length")(self, a),
        "Fn::ToJsonString": lambda self, a: self._unsupported("Fn::ToJsonString")(self, a),
    }


def merge_globals(template: Mapping[str, Any], resource_type: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """SAM ``Globals`` merged into a resource's properties, the way SAM does it (maps merge, lists append,
    scalars are overridden by the resource)."""
    section = {"AWS::Serverless::Function": "Function", "AWS::Serverless::HttpApi": "HttpApi"}.get(resource_type)
    defaults = (template.get("Globals") or {}).get(section or "", {}) if section else {}
    return _merge(copy.deepcopy(defaults), copy.deepcopy(dict(properties)))


def _is_intrinsic(value: Any) -> bool:
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    key = next(iter(value))
    return key in ("Ref", "Condition") or str(key).startswith("Fn::")


def _merge(base: Any, override: Any) -> Any:
    # SAM treats an intrinsic function like a scalar: the resource's value replaces the global one.
    if _is_intrinsic(base) or _is_intrinsic(override):
        return override
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(override, list):
        return base + override
    return override
