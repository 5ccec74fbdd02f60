"""Unit tests of leadpipe_local.cfn: CloudFormation tags, parameters, conditions, intrinsics, SAM Globals."""

from __future__ import annotations

import copy
import textwrap
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadpipe_local.cfn import (
    NO_VALUE,
    Resolver,
    ResourceState,
    TemplateError,
    load_template,
    merge_globals,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


def _load(tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_template(path)


def _template(**sections: Any) -> dict[str, Any]:
    return {"Resources": sections.pop("Resources", {}), **sections}


# ------------------------------------------------------------------------------------ load_template


def test_load_template_expands_every_short_tag(tmp_path: Path) -> None:
    template = _load(
        tmp_path,
        """
        Resources:
          R:
            Type: Test
            Properties:
              Ref: !Ref Param
              GetAttDotted: !GetAtt Queue.Arn
              GetAttNested: !GetAtt Db.Endpoint.Address
              GetAttList: !GetAtt [Queue, QueueName]
              Sub: !Sub "x-${Param}"
              SubList: !Sub ["${A}-b", {A: !Ref Param}]
              If: !If [IsProd, on-prod, elsewhere]
              Equals: !Equals [!Ref Param, prod]
              Not: !Not [!Condition IsProd]
              And: !And [!Condition IsProd, !Condition IsUs]
              Or: !Or [!Condition IsProd, !Condition IsUs]
              Select: !Select [1, !Split [",", "a,b,c"]]
              Join: !Join ["-", [a, !Ref Param]]
              FindInMap: !FindInMap [Map, !Ref "AWS::Region", Key]
              Base64: !Base64 hello
              Base64Map: !Base64 {Ref: Param}
              GetAZs: !GetAZs ""
              Condition: !Condition IsProd
        """,
    )
    assert template["Resources"]["R"]["Properties"] == {
        "Ref": {"Ref": "Param"},
        "GetAttDotted": {"Fn::GetAtt": ["Queue", "Arn"]},
        "GetAttNested": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
        "GetAttList": {"Fn::GetAtt": ["Queue", "QueueName"]},
        "Sub": {"Fn::Sub": "x-${Param}"},
        "SubList": {"Fn::Sub": ["${A}-b", {"A": {"Ref": "Param"}}]},
        "If": {"Fn::If": ["IsProd", "on-prod", "elsewhere"]},
        "Equals": {"Fn::Equals": [{"Ref": "Param"}, "prod"]},
        "Not": {"Fn::Not": [{"Condition": "IsProd"}]},
        "And": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "IsUs"}]},
        "Or": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "IsUs"}]},
        "Select": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
        "Join": {"Fn::Join": ["-", ["a", {"Ref": "Param"}]]},
        "FindInMap": {"Fn::FindInMap": ["Map", {"Ref": "AWS::Region"}, "Key"]},
        "Base64": {"Fn::Base64": "hello"},
        "Base64Map": {"Fn::Base64": {"Ref": "Param"}},
        "GetAZs": {"Fn::GetAZs": ""},
        "Condition": {"Condition": "IsProd"},
    }


def test_load_template_keeps_long_form_intrinsics(tmp_path: Path) -> None:
    template = _load(
        tmp_path,
        """
        Resources:
          R:
            Type: Test
            Properties:
              A: {"Fn::GetAtt": "Queue.Arn"}
              B: {"Fn::Join": ["", ["x", {"Ref": "P"}]]}
        """,
    )
    assert template["Resources"]["R"]["Properties"] == {
        "A": {"Fn::GetAtt": "Queue.Arn"},
        "B": {"Fn::Join": ["", ["x", {"Ref": "P"}]]},
    }


def test_load_template_does_not_register_tags_on_the_plain_safe_loader() -> None:
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load("a: !Ref B")


def test_load_template_rejects_a_document_without_resources(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"is not a CloudFormation template \(no Resources\)"):
        _load(tmp_path, "Parameters: {}\n")


def test_load_template_rejects_a_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no Resources"):
        _load(tmp_path, "- Resources\n")


# --------------------------------------------------------------------------------------- parameters

PARAMETERS = {
    "Stage": {"Type": "String", "Default": "dev", "AllowedPattern": "^[a-z][a-z0-9-]{0,11}$"},
    "LogLevel": {"Type": "String", "Default": "INFO", "AllowedValues": ["DEBUG", "INFO", "WARNING", "ERROR"]},
    "CacheDays": {"Type": "Number", "Default": 30, "MinValue": 1, "MaxValue": 3650},
    "MinQuality": {"Type": "Number", "Default": 0.7, "MinValue": 0, "MaxValue": 1},
    "Email": {"Type": "String", "Default": ""},
}


def test_parameter_defaults_are_used_and_become_strings() -> None:
    resolver = Resolver(_template(Parameters=PARAMETERS))
    assert resolver.parameters == {
        "Stage": "dev",
        "LogLevel": "INFO",
        "CacheDays": "30",
        "MinQuality": "0.7",
        "Email": "",
    }


def test_given_parameters_override_defaults_and_become_strings() -> None:
    resolver = Resolver(
        _template(Parameters=PARAMETERS),
        parameters={"Stage": "prod-eu", "CacheDays": 7, "MinQuality": "1", "LogLevel": "DEBUG"},
    )
    assert resolver.parameters == {
        "Stage": "prod-eu",
        "LogLevel": "DEBUG",
        "CacheDays": "7",
        "MinQuality": "1",
        "Email": "",
    }


def test_template_without_parameters_section_has_no_parameters() -> None:
    assert Resolver(_template()).parameters == {}


def test_unknown_parameters_are_rejected_and_listed_sorted() -> None:
    with pytest.raises(TemplateError, match=r"^unknown parameter\(s\): Bar, Foo$"):
        Resolver(_template(Parameters=PARAMETERS), parameters={"Foo": "1", "Bar": "2", "Stage": "dev"})


def test_parameter_without_default_and_value_is_rejected() -> None:
    template = _template(Parameters={"Needed": {"Type": "String"}})
    with pytest.raises(TemplateError, match=r"^parameter Needed has no default and no value was given$"):
        Resolver(template)
    assert Resolver(template, parameters={"Needed": "x"}).parameters == {"Needed": "x"}


def test_allowed_values_reject_other_values() -> None:
    with pytest.raises(TemplateError, match="parameter LogLevel='TRACE' is not one of"):
        Resolver(_template(Parameters=PARAMETERS), parameters={"LogLevel": "TRACE"})


def test_allowed_values_are_case_sensitive() -> None:
    with pytest.raises(TemplateError, match="LogLevel='info'"):
        Resolver(_template(Parameters=PARAMETERS), parameters={"LogLevel": "info"})


def test_allowed_values_compare_as_strings() -> None:
    template = _template(Parameters={"Days": {"Type": "Number", "Default": 7, "AllowedValues": [1, 7, 30]}})
    assert Resolver(template).parameters == {"Days": "7"}
    assert Resolver(template, parameters={"Days": "30"}).parameters == {"Days": "30"}
    with pytest.raises(TemplateError, match="Days='2' is not one of"):
        Resolver(template, parameters={"Days": 2})


def test_unquoted_yaml_booleans_are_the_strings_true_and_false(tmp_path: Path) -> None:
    template = _load(
        tmp_path,
        """
        Parameters:
          Flag:
            Type: String
            Default: true
            AllowedValues: [true, false]
        Conditions:
          FlagOn: !Equals [!Ref Flag, true]
        Resources: {}
        """,
    )
    on = Resolver(template)
    assert on.parameters == {"Flag": "true"}
    assert on.condition("FlagOn") is True
    off = Resolver(template, parameters={"Flag": "false"})
    assert off.parameters == {"Flag": "false"}
    assert off.condition("FlagOn") is False


@pytest.mark.parametrize("stage", ["dev", "a", "prod-eu-1", "abcdefghijkl"])
def test_allowed_pattern_accepts_matching_values(stage: str) -> None:
    assert Resolver(_template(Parameters=PARAMETERS), parameters={"Stage": stage}).parameters["Stage"] == stage


@pytest.mark.parametrize("stage", ["Dev", "1dev", "dev_x", "abcdefghijklm", ""])
def test_allowed_pattern_rejects_other_values(stage: str) -> None:
    with pytest.raises(TemplateError, match=f"parameter Stage='{stage}' does not match"):
        Resolver(_template(Parameters=PARAMETERS), parameters={"Stage": stage})


def test_allowed_pattern_must_match_the_whole_value() -> None:
    template = _template(Parameters={"Id": {"Type": "String", "Default": "abc", "AllowedPattern": "[a-z]+"}})
    assert Resolver(template).parameters == {"Id": "abc"}
    with pytest.raises(TemplateError, match="does not match"):
        Resolver(template, parameters={"Id": "abc1"})


@pytest.mark.parametrize(("value", "expected"), [(1, "1"), ("3650", "3650"), ("1.5", "1.5")])
def test_number_bounds_are_inclusive(value: Any, expected: str) -> None:
    resolver = Resolver(_template(Parameters=PARAMETERS), parameters={"CacheDays": value})
    assert resolver.parameters["CacheDays"] == expected


def test_number_below_min_value_is_rejected() -> None:
    with pytest.raises(TemplateError, match=r"^parameter CacheDays=0 is below 1$"):
        Resolver(_template(Parameters=PARAMETERS), parameters={"CacheDays": "0"})


def test_number_above_max_value_is_rejected() -> None:
    with pytest.raises(TemplateError, match=r"^parameter MinQuality=1.01 is above 1$"):
        Resolver(_template(Parameters=PARAMETERS), parameters={"MinQuality": "1.01"})


def test_number_that_is_not_a_number_is_rejected() -> None:
    with pytest.raises(TemplateError, match=r"^parameter CacheDays='thirty' is not a number$"):
        Resolver(_template(Parameters=PARAMETERS), parameters={"CacheDays": "thirty"})


def test_list_parameters_are_lists_when_referenced() -> None:
    template = _template(
        Parameters={
            "Subnets": {"Type": "CommaDelimitedList", "Default": "a,b,c"},
            "Ids": {"Type": "List<AWS::EC2::Subnet::Id>", "Default": "s-1,s-2"},
            "Plain": {"Type": "String", "Default": "a,b"},
        }
    )
    resolver = Resolver(template)
    assert resolver.resolve({"Ref": "Subnets"}) == ["a", "b", "c"]
    assert resolver.resolve({"Ref": "Ids"}) == ["s-1", "s-2"]
    assert resolver.resolve({"Ref": "Plain"}) == "a,b"
    assert resolver.resolve({"Fn::Join": ["+", {"Ref": "Subnets"}]}) == "a+b+c"
    assert resolver.resolve({"Fn::Select": [2, {"Ref": "Subnets"}]}) == "c"


# -------------------------------------------------------------------------------- pseudo parameters


def test_pseudo_parameters() -> None:
    resolver = Resolver(_template(), region="eu-west-1", account="111122223333", stack_name="lp-test")
    assert resolver.resolve({"Ref": "AWS::Region"}) == "eu-west-1"
    assert resolver.resolve({"Ref": "AWS::AccountId"}) == "111122223333"
    assert resolver.resolve({"Ref": "AWS::StackName"}) == "lp-test"
    assert (
        resolver.resolve({"Ref": "AWS::StackId"}) == "arn:aws:cloudformation:eu-west-1:111122223333:stack/lp-test/local"
    )
    assert resolver.resolve({"Ref": "AWS::Partition"}) == "aws"
    assert resolver.resolve({"Ref": "AWS::URLSuffix"}) == "amazonaws.com"
    assert resolver.resolve({"Ref": "AWS::NotificationARNs"}) == []
    assert resolver.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE


def test_resolver_defaults() -> None:
    resolver = Resolver(_template())
    assert (resolver.region, resolver.account, resolver.stack_name) == (
        "us-east-1",
        "123456789012",
        "leadpipe-local",
    )
    assert resolver.resources == {}


def test_unknown_pseudo_parameter_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"^Ref AWS::Regoin: no such pseudo parameter$"):
        Resolver(_template()).resolve({"Fn::Sub": "bucket-${AWS::Regoin}"})


# --------------------------------------------------------------------------------------- conditions

CONDITIONS_TEMPLATE = _template(
    Parameters={
        "Stage": {"Type": "String", "Default": "dev"},
        "Email": {"Type": "String", "Default": ""},
    },
    Conditions={
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "IsUsEast1": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
        "HasEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Email"}, ""]}]},
        "ProdInUsEast1": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "IsUsEast1"}]},
        "ProdOrEmail": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "HasEmail"}]},
        "NotProdInUsEast1": {"Fn::Not": [{"Condition": "ProdInUsEast1"}]},
    },
    Resources={
        "Always": {"Type": "Test"},
        "ProdOnly": {"Type": "Test", "Condition": "IsProd"},
        "Nested": {"Type": "Test", "Condition": "NotProdInUsEast1"},
    },
)


@pytest.mark.parametrize(
    ("parameters", "region", "expected"),
    [
        (
            {},
            "us-east-1",
            {
                "IsProd": False,
                "IsUsEast1": True,
                "HasEmail": False,
                "ProdInUsEast1": False,
                "ProdOrEmail": False,
                "NotProdInUsEast1": True,
            },
        ),
        (
            {"Stage": "prod"},
            "us-east-1",
            {
                "IsProd": True,
                "IsUsEast1": True,
                "HasEmail": False,
                "ProdInUsEast1": True,
                "ProdOrEmail": True,
                "NotProdInUsEast1": False,
            },
        ),
        (
            {"Stage": "prod"},
            "eu-west-1",
            {
                "IsProd": True,
                "IsUsEast1": False,
                "HasEmail": False,
                "ProdInUsEast1": False,
                "ProdOrEmail": True,
                "NotProdInUsEast1": True,
            },
        ),
        (
            {"Email": "ops@example.com"},
            "eu-west-1",
            {
                "IsProd": False,
                "IsUsEast1": False,
                "HasEmail": True,
                "ProdInUsEast1": False,
                "ProdOrEmail": True,
                "NotProdInUsEast1": True,
            },
        ),
    ],
)
def test_conditions_including_nested_ones(parameters: dict[str, str], region: str, expected: dict[str, bool]) -> None:
    resolver = Resolver(CONDITIONS_TEMPLATE, parameters=parameters, region=region)
    assert {name: resolver.condition(name) for name in expected} == expected


def test_unknown_condition_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"^unknown condition Nope$"):
        Resolver(CONDITIONS_TEMPLATE).condition("Nope")


def test_condition_function_inside_a_value() -> None:
    resolver = Resolver(CONDITIONS_TEMPLATE, parameters={"Stage": "prod"})
    assert resolver.resolve({"Enabled": {"Condition": "IsProd"}}) == {"Enabled": True}


def test_active_follows_the_resource_condition() -> None:
    dev = Resolver(CONDITIONS_TEMPLATE)
    assert [dev.active(r) for r in ("Always", "ProdOnly", "Nested")] == [True, False, True]
    prod = Resolver(CONDITIONS_TEMPLATE, parameters={"Stage": "prod"})
    assert [prod.active(r) for r in ("Always", "ProdOnly", "Nested")] == [True, True, False]


def test_active_with_unknown_condition_is_an_error() -> None:
    template = _template(Resources={"R": {"Type": "Test", "Condition": "Missing"}})
    with pytest.raises(TemplateError, match="unknown condition Missing"):
        Resolver(template).active("R")


# ----------------------------------------------------------------------------------- Ref and GetAtt

RESOURCES_TEMPLATE = _template(
    Parameters={
        "Stage": {"Type": "String", "Default": "dev"},
        "AttrName": {"Type": "String", "Default": "QueueName"},
    },
    Mappings={
        "Sizes": {
            "us-east-1": {"Memory": 512, "Name": "virginia"},
            "eu-west-1": {"Memory": 256, "Name": "ireland"},
        },
        "ByStage": {"dev": {"Retention": 7}, "prod": {"Retention": 90}},
    },
    Conditions={
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
    },
    Resources={
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Db": {"Type": "AWS::RDS::DBInstance"},
        "Table": {"Type": "AWS::DynamoDB::Table"},
        "Later": {"Type": "AWS::SNS::Topic"},
    },
)


def _resolver(**kwargs: Any) -> Resolver:
    resolver = Resolver(RESOURCES_TEMPLATE, **kwargs)
    resolver.resources["Queue"] = ResourceState(
        ref="https://sqs.local/123456789012/q",
        attributes={"Arn": "arn:aws:sqs:us-east-1:123456789012:q", "QueueName": "q"},
    )
    resolver.resources["Db"] = ResourceState(ref="db-1", attributes={"Endpoint.Address": "db.local"})
    resolver.resources["Table"] = ResourceState(ref="contacts")
    return resolver


def test_ref_of_parameter_resource_and_pseudo_parameter() -> None:
    resolver = _resolver()
    assert resolver.resolve({"Ref": "Stage"}) == "dev"
    assert resolver.resolve({"Ref": "Queue"}) == "https://sqs.local/123456789012/q"
    assert resolver.resolve({"Ref": "AWS::Region"}) == "us-east-1"


def test_ref_of_a_resource_not_created_yet_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"^Ref Later: the resource is not created \(yet"):
        _resolver().resolve({"Ref": "Later"})


def test_ref_of_an_unknown_name_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"^Ref Nothing: no such parameter or resource$"):
        _resolver().resolve({"Ref": "Nothing"})


def test_getatt_list_and_dotted_forms() -> None:
    resolver = _resolver()
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:aws:sqs:us-east-1:123456789012:q"
    assert resolver.resolve({"Fn::GetAtt": "Queue.QueueName"}) == "q"
    assert resolver.resolve({"Fn::GetAtt": "Db.Endpoint.Address"}) == "db.local"
    assert resolver.resolve({"Fn::GetAtt": ["Db", "Endpoint.Address"]}) == "db.local"


def test_getatt_attribute_name_may_be_an_intrinsic() -> None:
    assert _resolver().resolve({"Fn::GetAtt": ["Queue", {"Ref": "AttrName"}]}) == "q"


def test_getatt_of_a_resource_not_created_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"^GetAtt Later.Arn: the resource is not created$"):
        _resolver().resolve({"Fn::GetAtt": ["Later", "Arn"]})


def test_getatt_of_an_unsupported_attribute_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"^GetAtt Table.StreamArn: attribute not supported locally$"):
        _resolver().resolve({"Fn::GetAtt": ["Table", "StreamArn"]})


# ---------------------------------------------------------------------------------------------- Sub


def test_sub_parameters_pseudo_parameters_resources_and_attributes() -> None:
    resolver = _resolver(region="eu-west-1", account="111122223333")
    text = "${Stage}|${AWS::Region}|${AWS::AccountId}|${Table}|${Queue.Arn}|${Db.Endpoint.Address}"
    assert resolver.resolve({"Fn::Sub": text}) == (
        "dev|eu-west-1|111122223333|contacts|arn:aws:sqs:us-east-1:123456789012:q|db.local"
    )


def test_sub_escaped_literal_is_kept_without_the_bang() -> None:
    assert _resolver().resolve({"Fn::Sub": "${!Literal}-${Stage}-${!Queue.Arn}"}) == "${Literal}-dev-${Queue.Arn}"


def test_sub_without_placeholders_is_unchanged() -> None:
    assert _resolver().resolve({"Fn::Sub": "plain $text {not} a $ {placeholder}"}) == (
        "plain $text {not} a $ {placeholder}"
    )


def test_sub_list_form_with_variables() -> None:
    resolver = _resolver()
    value = {
        "Fn::Sub": [
            "${Name}/${Arn}/${Stage}/${Queue}",
            {
                "Name": "fixed",
                "Arn": {"Fn::GetAtt": ["Queue", "Arn"]},
                "Stage": {"Fn::Join": ["", ["over", "ride"]]},
            },
        ]
    }
    # variables take precedence over parameters and resources of the same name
    assert resolver.resolve(value) == (
        "fixed/arn:aws:sqs:us-east-1:123456789012:q/override/https://sqs.local/123456789012/q"
    )


def test_sub_of_unknown_name_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"^Ref Missing: no such parameter or resource$"):
        _resolver().resolve({"Fn::Sub": "x-${Missing}"})


def test_sub_of_unsupported_attribute_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"^GetAtt Table.Arn: attribute not supported locally$"):
        _resolver().resolve({"Fn::Sub": "${Table.Arn}"})


# ---------------------------------------------------------------------------------- other functions


def test_join() -> None:
    resolver = _resolver()
    assert resolver.resolve({"Fn::Join": [":", ["a", {"Ref": "Stage"}, 3]]}) == "a:dev:3"
    assert resolver.resolve({"Fn::Join": [",", []]}) == ""
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "AWS::NoValue"}, "b"]]}) == "a-b"


def test_select_and_split() -> None:
    resolver = _resolver()
    assert resolver.resolve({"Fn::Split": [",", "a,b,,c"]}) == ["a", "b", "", "c"]
    assert resolver.resolve({"Fn::Split": ["-", {"Ref": "Stage"}]}) == ["dev"]
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": ["/", "x/y/z"]}]}) == "y"
    assert resolver.resolve({"Fn::Select": ["0", ["first", "second"]]}) == "first"
    assert resolver.resolve({"Fn::Select": [{"Fn::Select": [0, ["2"]]}, ["a", "b", "c"]]}) == "c"


def test_getazs_uses_the_region() -> None:
    assert Resolver(_template(), region="eu-west-2").resolve({"Fn::GetAZs": ""}) == [
        "eu-west-2a",
        "eu-west-2b",
        "eu-west-2c",
    ]
    assert Resolver(_template()).resolve({"Fn::Select": [0, {"Fn::GetAZs": {"Ref": "AWS::Region"}}]}) == "us-east-1a"


def test_if_picks_the_branch_of_the_condition() -> None:
    value = {"Fn::If": ["IsProd", {"Ref": "Stage"}, {"Fn::Sub": "not-${Stage}"}]}
    assert _resolver().resolve(value) == "not-dev"
    assert _resolver(parameters={"Stage": "prod"}).resolve(value) == "prod"


def test_if_only_resolves_the_chosen_branch() -> None:
    # the other branch refers to a resource that is not created: it must not be evaluated
    value = {"Fn::If": ["IsProd", {"Ref": "Later"}, "fallback"]}
    assert _resolver().resolve(value) == "fallback"


def test_if_with_no_value_removes_list_items_and_map_keys() -> None:
    value = {
        "Keep": "yes",
        "Drop": {"Fn::If": ["IsProd", "prod-only", {"Ref": "AWS::NoValue"}]},
        "Items": [
            "a",
            {"Fn::If": ["IsDev", {"Ref": "AWS::NoValue"}, "b"]},
            {"Fn::If": ["IsProd", {"Ref": "AWS::NoValue"}, "c"]},
        ],
        "Nested": {"Inner": {"Ref": "AWS::NoValue"}, "Other": 1},
    }
    assert _resolver().resolve(value) == {"Keep": "yes", "Items": ["a", "c"], "Nested": {"Other": 1}}
    assert _resolver(parameters={"Stage": "prod"}).resolve(value) == {
        "Keep": "yes",
        "Drop": "prod-only",
        "Items": ["a", "b"],
        "Nested": {"Other": 1},
    }


def test_nested_if() -> None:
    value = {"Fn::If": ["IsDev", {"Fn::If": ["IsProd", "impossible", "dev"]}, "prod"]}
    assert _resolver().resolve(value) == "dev"
    assert _resolver(parameters={"Stage": "prod"}).resolve(value) == "prod"


def test_equals_not_and_or_as_values() -> None:
    resolver = _resolver()
    assert resolver.resolve({"Fn::Equals": [{"Ref": "Stage"}, "dev"]}) is True
    assert resolver.resolve({"Fn::Equals": ["1", 1]}) is True
    assert resolver.resolve({"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}) is True
    assert resolver.resolve({"Fn::And": [{"Condition": "IsDev"}, {"Fn::Equals": ["a", "a"]}]}) is True
    assert resolver.resolve({"Fn::And": [{"Condition": "IsDev"}, {"Condition": "IsProd"}]}) is False
    assert resolver.resolve({"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "IsDev"}]}) is True
    assert resolver.resolve({"Fn::Or": [{"Condition": "IsProd"}, {"Fn::Equals": ["a", "b"]}]}) is False


def test_find_in_map_with_intrinsic_keys() -> None:
    assert _resolver().resolve({"Fn::FindInMap": ["Sizes", {"Ref": "AWS::Region"}, "Memory"]}) == 512
    assert _resolver(region="eu-west-1").resolve({"Fn::FindInMap": ["Sizes", {"Ref": "AWS::Region"}, "Name"]}) == (
        "ireland"
    )
    assert (
        _resolver(parameters={"Stage": "prod"}).resolve({"Fn::FindInMap": ["ByStage", {"Ref": "Stage"}, "Retention"]})
        == 90
    )


def test_base64() -> None:
    resolver = _resolver()
    assert resolver.resolve({"Fn::Base64": "hello"}) == "aGVsbG8="
    assert resolver.resolve({"Fn::Base64": {"Fn::Sub": "stage=${Stage}"}}) == "c3RhZ2U9ZGV2"
    assert resolver.resolve({"Fn::Base64": "é"}) == "w6k="


@pytest.mark.parametrize("function", ["Fn::ImportValue", "Fn::Cidr", "Fn::Length", "Fn::ToJsonString"])
def test_unsupported_functions_are_errors_not_passed_through(function: str) -> None:
    with pytest.raises(TemplateError, match=f"^{function} is not supported by the local runtime$"):
        _resolver().resolve({"Key": {function: "x"}})


def test_resolve_leaves_scalars_and_plain_structures_alone() -> None:
    resolver = _resolver()
    assert resolver.resolve(5) == 5
    assert resolver.resolve(None) is None
    assert resolver.resolve(True) is True
    assert resolver.resolve("${Stage}") == "${Stage}"
    assert resolver.resolve({"Name": {"Ref": "Stage"}}) == {"Name": "dev"}
    assert resolver.resolve({"Ref": "Stage", "Other": 1}) == {"Ref": "Stage", "Other": 1}
    assert resolver.resolve([[{"Ref": "Stage"}], {"a": [1]}]) == [["dev"], {"a": [1]}]


def test_resolve_does_not_modify_its_input() -> None:
    value = {"A": [{"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]}], "B": {"Ref": "Stage"}}
    before = copy.deepcopy(value)
    assert _resolver().resolve(value) == {"A": [], "B": "dev"}
    assert value == before


# --------------------------------------------------------------------------------------- references

REFS_TEMPLATE = _template(
    Parameters={"Stage": {"Type": "String", "Default": "dev"}},
    Resources={name: {"Type": "Test"} for name in ("Queue", "Bucket", "Table", "Topic", "Role", "Fn", "Layer")},
)


def test_references_finds_ref_getatt_and_sub_targets() -> None:
    resolver = Resolver(REFS_TEMPLATE)
    value = {
        "A": {"Ref": "Queue"},
        "B": {"Fn::GetAtt": ["Bucket", "Arn"]},
        "C": {"Fn::GetAtt": "Table.StreamArn"},
        "D": [{"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${Topic}"}],
        "E": {"Nested": [{"Fn::Sub": "${Role.Arn}/x"}]},
        "F": {"Fn::Join": ["", [{"Ref": "Fn"}]]},
        "G": {"Fn::If": ["Cond", {"Ref": "Layer"}, "x"]},
    }
    assert resolver.references(value) == {"Queue", "Bucket", "Table", "Topic", "Role", "Fn", "Layer"}


def test_references_ignores_parameters_pseudo_parameters_literals_and_unknown_names() -> None:
    resolver = Resolver(REFS_TEMPLATE)
    value = [
        {"Ref": "Stage"},
        {"Ref": "AWS::Region"},
        {"Ref": "Unknown"},
        {"Fn::GetAtt": ["Unknown", "Arn"]},
        {"Fn::Sub": "${!Queue}-${Stage}-${AWS::AccountId}-${Unknown.Arn}"},
        "Queue",
        {"Queue": "Bucket"},
    ]
    assert resolver.references(value) == set()


def test_references_in_sub_list_form() -> None:
    resolver = Resolver(REFS_TEMPLATE)
    value = {"Fn::Sub": ["${Table}-${Name}", {"Name": {"Fn::GetAtt": ["Queue", "QueueName"]}}]}
    assert resolver.references(value) == {"Table", "Queue"}


def test_references_skip_sub_variables_named_like_resources() -> None:
    resolver = Resolver(REFS_TEMPLATE)
    value = {"Fn::Sub": ["${Bucket}/${Topic}", {"Bucket": "literal-bucket"}]}
    assert resolver.references(value) == {"Topic"}


# ------------------------------------------------------------------------------------ merge_globals

FN = "AWS::Serverless::Function"
GLOBALS_TEMPLATE = _template(
    Globals={
        "Function": {
            "Runtime": "python3.13",
            "Timeout": 30,
            "MemorySize": 512,
            "Layers": [{"Ref": "Deps"}, {"Ref": "Shared"}],
            "Environment": {"Variables": {"STAGE": {"Ref": "Stage"}, "LEVEL": "INFO"}},
            "Tags": {"app": "leadpipe"},
            "Role": {"Fn::GetAtt": ["GlobalRole", "Arn"]},
        },
        "HttpApi": {"CorsConfiguration": {"AllowOrigins": ["*"]}},
    }
)


def test_merge_globals_maps_merge_lists_concatenate_scalars_are_overridden() -> None:
    merged = merge_globals(
        GLOBALS_TEMPLATE,
        FN,
        {
            "Handler": "app.handler",
            "Timeout": 300,
            "Layers": [{"Ref": "Extra"}],
            "Environment": {"Variables": {"LEVEL": "DEBUG", "OWN": "1"}},
        },
    )
    assert merged == {
        "Runtime": "python3.13",
        "Timeout": 300,
        "MemorySize": 512,
        "Layers": [{"Ref": "Deps"}, {"Ref": "Shared"}, {"Ref": "Extra"}],
        "Environment": {"Variables": {"STAGE": {"Ref": "Stage"}, "LEVEL": "DEBUG", "OWN": "1"}},
        "Tags": {"app": "leadpipe"},
        "Role": {"Fn::GetAtt": ["GlobalRole", "Arn"]},
        "Handler": "app.handler",
    }


def test_merge_globals_concatenates_lists_like_sam_without_removing_duplicates() -> None:
    merged = merge_globals(GLOBALS_TEMPLATE, FN, {"Layers": [{"Ref": "Shared"}]})
    assert merged["Layers"] == [{"Ref": "Deps"}, {"Ref": "Shared"}, {"Ref": "Shared"}]


def test_merge_globals_treats_intrinsics_as_scalars() -> None:
    merged = merge_globals(
        GLOBALS_TEMPLATE,
        FN,
        {
            "Role": {"Ref": "OwnRole"},
            "Environment": {"Variables": {"STAGE": {"Fn::Sub": "${Stage}-x"}}},
        },
    )
    assert merged["Role"] == {"Ref": "OwnRole"}
    assert merged["Environment"] == {"Variables": {"STAGE": {"Fn::Sub": "${Stage}-x"}, "LEVEL": "INFO"}}


def test_merge_globals_resource_value_of_another_type_wins() -> None:
    merged = merge_globals(GLOBALS_TEMPLATE, FN, {"Tags": None, "Layers": {"Ref": "LayerList"}, "Timeout": [1]})
    assert (merged["Tags"], merged["Layers"], merged["Timeout"]) == (None, {"Ref": "LayerList"}, [1])


def test_merge_globals_http_api_section() -> None:
    merged = merge_globals(
        GLOBALS_TEMPLATE, "AWS::Serverless::HttpApi", {"CorsConfiguration": {"AllowMethods": ["GET"]}}
    )
    assert merged == {"CorsConfiguration": {"AllowOrigins": ["*"], "AllowMethods": ["GET"]}}


def test_merge_globals_ignores_other_resource_types() -> None:
    properties = {"VisibilityTimeout": 60}
    assert merge_globals(GLOBALS_TEMPLATE, "AWS::SQS::Queue", properties) == {"VisibilityTimeout": 60}
    assert merge_globals(GLOBALS_TEMPLATE, "AWS::Serverless::LayerVersion", {}) == {}


def test_merge_globals_without_globals_section() -> None:
    assert merge_globals(_template(), FN, {"Handler": "h"}) == {"Handler": "h"}
    assert merge_globals(_template(Globals=None), FN, {"Handler": "h"}) == {"Handler": "h"}


def test_merge_globals_copies_instead_of_sharing() -> None:
    template = copy.deepcopy(GLOBALS_TEMPLATE)
    properties = {"Environment": {"Variables": {"OWN": "1"}}, "Layers": [{"Ref": "Extra"}]}
    merged = merge_globals(template, FN, properties)
    merged["Environment"]["Variables"]["NEW"] = "x"
    merged["Layers"].append("y")
    merged["Tags"]["k"] = "v"
    assert template == GLOBALS_TEMPLATE
    assert properties == {"Environment": {"Variables": {"OWN": "1"}}, "Layers": [{"Ref": "Extra"}]}


# -------------------------------------------------------------------------------- the real template


@pytest.fixture(scope="module")
def real_template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _placeholders(template: dict[str, Any], **kwargs: Any) -> Resolver:
    resolver = Resolver(template, **kwargs)
    for logical_id in template["Resources"]:
        resolver.resources[logical_id] = ResourceState(
            ref=f"ref-{logical_id}",
            attributes={
                "Arn": f"arn:{logical_id}",
                "Name": f"name-{logical_id}",
                "QueueName": f"queue-{logical_id}",
            },
        )
    return resolver


def test_real_template_loads(real_template: dict[str, Any]) -> None:
    assert real_template["Transform"] == "AWS::Serverless-2016-10-31"
    assert real_template["Conditions"] == {
        "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
    }
    assert real_template["Globals"]["Function"]["Layers"] == [{"Ref": "DepsLayer"}, {"Ref": "SharedLayer"}]
    functions = sorted(k for k, v in real_template["Resources"].items() if v["Type"] == FN)
    assert functions == [
        "ActivityFunction",
        "ApiFunction",
        "DealsFunction",
        "EnrichFunction",
        "ImportFunction",
        "PollingFunction",
        "RetentionFunction",
        "SyncFunction",
        "WebhookFunction",
    ]


def test_real_template_parameter_defaults(real_template: dict[str, Any]) -> None:
    assert Resolver(real_template).parameters == {
        "Stage": "dev",
        "AutoEnrichOnImport": "true",
        "AutoSyncAfterEnrich": "false",
        "CacheDays": "30",
        "MinQuality": "0.7",
        "LogLevel": "INFO",
        "UploadRetentionDays": "30",
        "AlarmEmail": "",
        "EnrichProviders": "sample,sample-web,apollo,pdl,hunter,dropcontact",
        "EnrichConcurrency": "2",
        "CacheMissDays": "7",
        "EnrichRetrySchedule": "rate(15 minutes)",
        "HubSpotBurstLimit": "100",
        "SyncConcurrency": "2",
        "SyncRetrySchedule": "rate(5 minutes)",
        "HubSpotPortalId": "0",
        "HubSpotAppId": "0",
        "HubSpotPolling": "false",
        "PollSchedule": "rate(15 minutes)",
        "PollLookbackMinutes": "5",
        "WebhookSignatureVersions": "v3",
        "DealsSchedule": "cron(0 7 1 * ? *)",
        "RetentionDays": "365",
    }


def test_real_template_conditions(real_template: dict[str, Any]) -> None:
    assert Resolver(real_template).active("AlarmEmailSubscription") is False
    everything = Resolver(real_template, parameters={"AlarmEmail": "ops@example.com", "AutoSyncAfterEnrich": "true"})
    assert everything.active("AlarmEmailSubscription") is True
    assert all(everything.active(r) for r in real_template["Resources"])
    # The automation rules always exist: the switches are per workspace (the parameters are the default), and the
    # enrich and sync functions drop the rules' events for a workspace whose switch is off.
    for parameters in ({}, {"AutoEnrichOnImport": "false"}, {"AutoSyncAfterEnrich": "false"}):
        resolver = Resolver(real_template, parameters=parameters)
        assert sorted(r for r in real_template["Resources"] if not resolver.active(r)) == ["AlarmEmailSubscription"]


def test_real_template_every_function_resolves_with_globals(real_template: dict[str, Any]) -> None:
    resolver = _placeholders(real_template, parameters={"Stage": "qa", "LogLevel": "DEBUG"})
    resolved = {
        logical_id: resolver.resolve(merge_globals(real_template, FN, resource.get("Properties", {})))
        for logical_id, resource in real_template["Resources"].items()
        if resource["Type"] == FN
    }
    common_env = {
        "STAGE": "qa",
        "POWERTOOLS_SERVICE_NAME": "leadpipe",
        "POWERTOOLS_METRICS_NAMESPACE": "Leadpipe",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        "CONTACTS_TABLE": "ref-ContactsTable",
        "STATE_TABLE": "ref-StateTable",
        "EVENT_BUS_NAME": "name-EventBus",
        "UPLOADS_BUCKET": "ref-UploadsBucket",
        "IMPORT_QUEUE_URL": "ref-ImportQueue",
        "AUTO_ENRICH_ON_IMPORT": "true",
        "AUTO_SYNC_AFTER_ENRICH": "false",
        "CACHE_DAYS": "30",
        "MIN_QUALITY": "0.7",
        "ENRICH_QUEUE_URL": "ref-EnrichQueue",
        "ENRICH_CACHE_TABLE": "ref-EnrichCacheTable",
        "ENRICH_PROVIDERS": "sample,sample-web,apollo,pdl,hunter,dropcontact",
        "ENRICH_CONCURRENCY": "2",
        "CACHE_MISS_DAYS": "7",
        "PROVIDER_KEYS_PATH": "/leadpipe/qa/workspaces",
        "SUPPRESSION_SALT_SECRET": "ref-SuppressionSalt",
        "SYNC_QUEUE_URL": "ref-SyncQueue",
        "SYNC_CONCURRENCY": "2",
        "HUBSPOT_BURST_LIMIT": "100",
        "CHANGE_QUEUE_URL": "ref-ChangeQueue",
        "HUBSPOT_PORTAL_ID": "0",
        "HUBSPOT_APP_ID": "0",
        "HUBSPOT_POLLING": "false",
        "POLL_LOOKBACK_MINUTES": "5",
        "WEBHOOK_SIGNATURE_VERSIONS": "v3",
        "DEAL_QUEUE_URL": "ref-DealQueue",
        "DEALS_SCHEDULE": "cron(0 7 1 * ? *)",
        "RETENTION_DAYS": "365",
        "IMPORT_DLQ_URL": "ref-ImportDLQ",
        "ENRICH_DLQ_URL": "ref-EnrichDLQ",
        "SYNC_DLQ_URL": "ref-SyncDLQ",
        "CHANGE_DLQ_URL": "ref-ChangeDLQ",
        "DEAL_DLQ_URL": "ref-DealDLQ",
        "ACTIVITY_QUEUE_URL": "ref-ActivityQueue",
        "ACTIVITY_DLQ_URL": "ref-ActivityDLQ",
    }
    api = resolved["ApiFunction"]
    assert api["Environment"] == {"Variables": common_env}
    assert api["Layers"] == ["ref-DepsLayer", "ref-SharedLayer"]
    assert (api["Runtime"], api["Timeout"], api["MemorySize"], api["Handler"], api["CodeUri"]) == (
        "python3.13",
        29,
        512,
        "api_handler.handler",
        "functions/api/",
    )
    assert api["Events"]["GetContact"] == {
        "Type": "HttpApi",
        "Properties": {"ApiId": "ref-HttpApi", "Path": "/contacts/{email}", "Method": "GET"},
    }
    [inline] = [p for p in api["Policies"] if "Statement" in p]
    [uploads] = [st for st in inline["Statement"] if st.get("Sid") == "WriteImportFiles"]
    assert uploads["Resource"] == [
        "arn:UploadsBucket/imports/*",
        "arn:UploadsBucket/incoming/uploads/*",
    ]
    imp = resolved["ImportFunction"]
    assert imp["Environment"] == {
        "Variables": {
            **common_env,
            "IMPORT_TIME_MARGIN_MS": "30000",
            "IMPORT_MAX_RECEIVES": "5",
            "HUBSPOT_LIMIT_SHARE": "0.1",
            "HUBSPOT_CONTAINERS": "2",
        }
    }
    assert imp["Layers"] == ["ref-DepsLayer", "ref-SharedLayer"]
    assert (imp["Timeout"], imp["MemorySize"]) == (300, 1024)
    assert imp["Events"]["ImportQueueMessages"]["Properties"]["Queue"] == "arn:ImportQueue"
    changes = imp["Events"]["ChangeQueueMessages"]["Properties"]
    assert (changes["Queue"], changes["BatchSize"], changes["FunctionResponseTypes"]) == (
        "arn:ChangeQueue",
        1,
        ["ReportBatchItemFailures"],
    )
    webhook = resolved["WebhookFunction"]
    assert webhook["Environment"] == {"Variables": common_env}
    assert webhook["Events"]["HubSpotWebhook"]["Properties"] == {
        "ApiId": "ref-HttpApi",
        "Path": "/webhooks/hubspot",
        "Method": "POST",
    }
    polling = resolved["PollingFunction"]
    assert polling["ReservedConcurrentExecutions"] == 1  # one writer of the cursor
    assert polling["Events"]["Poll"]["Properties"]["Schedule"] == "rate(15 minutes)"
    deals = resolved["DealsFunction"]
    assert deals["Events"]["Monthly"]["Properties"]["Schedule"] == "cron(0 7 1 * ? *)"  # the 1st, 07:00 UTC
    assert deals["Events"]["DealQueueMessages"]["Properties"]["Queue"] == "arn:DealQueue"
    enrich = resolved["EnrichFunction"]
    assert enrich["Environment"] == {"Variables": common_env}
    assert (enrich["Timeout"], enrich["Handler"]) == (300, "enrich_handler.handler")
    source = enrich["Events"]["EnrichQueueMessages"]["Properties"]
    assert (source["Queue"], source["BatchSize"], source["ScalingConfig"]) == (
        "arn:EnrichQueue",
        1,
        {"MaximumConcurrency": "2"},
    )
    assert enrich["Events"]["RetryDue"]["Properties"]["Schedule"] == "rate(15 minutes)"
    sync = resolved["SyncFunction"]
    assert sync["Environment"] == {
        "Variables": {**common_env, "HUBSPOT_LIMIT_SHARE": "0.9", "SYNC_INFLIGHT_SECONDS": "300"}
    }
    # the burst limit: 0.9 for the sync containers, 0.1 for the change consumers; search: 0.9 and the poller's 0.1
    assert resolved["PollingFunction"]["Environment"]["Variables"]["HUBSPOT_LIMIT_SHARE"] == "0.1"
    assert (sync["Timeout"], sync["Handler"], sync["CodeUri"]) == (300, "sync_handler.handler", "functions/sync/")
    source = sync["Events"]["SyncQueueMessages"]["Properties"]
    assert (source["Queue"], source["BatchSize"], source["FunctionResponseTypes"], source["ScalingConfig"]) == (
        "arn:SyncQueue",
        1,
        ["ReportBatchItemFailures"],
        {"MaximumConcurrency": "2"},
    )
    assert sync["Events"]["RetryDue"]["Properties"]["Schedule"] == "rate(5 minutes)"


def test_real_template_every_resource_and_output_resolves(real_template: dict[str, Any]) -> None:
    resolver = _placeholders(real_template, parameters={"AlarmEmail": "ops@example.com"})
    resources = real_template["Resources"]
    resolved = {
        logical_id: resolver.resolve(merge_globals(real_template, r["Type"], r.get("Properties", {})))
        for logical_id, r in resources.items()
    }
    assert resolved["ApiFunctionLogs"]["LogGroupName"] == "/aws/lambda/ref-ApiFunction"
    assert resolved["ImportFunctionLogs"]["LogGroupName"] == "/aws/lambda/ref-ImportFunction"
    assert resolved["DepsLayer"]["LayerName"] == "leadpipe-dev-deps"
    assert resolved["AlarmEmailSubscription"]["Endpoint"] == "ops@example.com"
    # the bucket policy on the queue must name exactly the bucket the template creates
    bucket = resolved["UploadsBucket"]["BucketName"]
    assert bucket == "leadpipe-dev-uploads-123456789012-us-east-1"
    statement = resolved["ImportQueuePolicy"]["PolicyDocument"]["Statement"][0]
    assert statement["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    }
    outputs = {name: resolver.resolve(o["Value"]) for name, o in real_template["Outputs"].items()}
    assert outputs["ApiUrl"] == "https://ref-HttpApi.execute-api.us-east-1.amazonaws.com"
    assert outputs["EventBusName"] == "name-EventBus"


def test_real_template_dependencies_form_a_valid_order(real_template: dict[str, Any]) -> None:
    resolver = Resolver(real_template)
    resources = real_template["Resources"]
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        deps = resolver.references(resource.get("Properties", {}))
        depends_on = resource.get("DependsOn", [])
        deps |= {depends_on} if isinstance(depends_on, str) else set(depends_on)
        if resource["Type"] == FN:
            deps |= resolver.references(real_template["Globals"]["Function"])
        graph[logical_id] = deps - {logical_id}
    assert graph["UploadsBucket"] == {"ImportQueue", "ImportQueuePolicy"}
    assert graph["ApiFunctionLogs"] == {"ApiFunction"}
    assert graph["ImportFunction"] == {
        "DepsLayer",
        "SharedLayer",
        "ContactsTable",
        "StateTable",
        "EventBus",
        "UploadsBucket",
        "ImportQueue",
        "EnrichQueue",
        "EnrichCacheTable",
        "SuppressionSalt",
        "SyncQueue",
        "ChangeQueue",
        "DealQueue",
        "ImportDLQ",
        "EnrichDLQ",
        "SyncDLQ",
        "ChangeDLQ",
        "DealDLQ",
        "ActivityQueue",
        "ActivityDLQ",
    }
    assert graph["ChangeQueue"] == {"ChangeDLQ"}
    assert graph["DealQueue"] == {"DealDLQ"}
    assert graph["AutoEnrichQueuePolicy"] == {"EnrichQueue", "AutoEnrichRule"}
    assert graph["AutoSyncQueuePolicy"] == {"SyncQueue", "AutoSyncRule"}
    assert graph["SyncQueue"] == {"SyncDLQ"}
    order = list(TopologicalSorter(graph).static_order())
    assert sorted(order) == sorted(resources)
    for logical_id, deps in graph.items():
        assert all(order.index(dep) < order.index(logical_id) for dep in deps), logical_id
