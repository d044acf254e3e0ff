import json

import pytest

from dwcpkit.errors import ParameterError
from dwcpkit.runbook.params import parse_parameters_source, read_schema, validate

CELL = '''
from typing import Literal
source: str = "sample"  # where the data comes from
target_percent: int = 10  # rollout stage [0, 100]
ratio: float = 0.75  # share of degraded samples [0, 1]
mode: Literal["cumulative", "consecutive"] = "consecutive"  # how checks add up
at: str | None = None  # evaluation time (ISO, UTC); None = end of data
token: Secret = ""  # NAME of the env var with the token
dry_run: bool = True  # only record actions
'''


@pytest.fixture
def schema():
    return parse_parameters_source(CELL, "demo")


def test_schema_reads_types_defaults_help_and_ranges(schema):
    assert list(schema.parameters) == ["source", "target_percent", "ratio", "mode", "at", "token", "dry_run"]
    tp = schema["target_percent"]
    assert (tp.type, tp.default, tp.range, tp.help) == ("int", 10, (0, 100), "rollout stage")
    assert schema["mode"].choices == ("cumulative", "consecutive")
    assert schema["at"].optional and schema["at"].default is None
    assert schema["token"].secret
    assert schema["dry_run"].type == "bool" and schema["dry_run"].default is True


@pytest.mark.parametrize(
    "given, expected",
    [
        ({"target_percent": "50"}, {"target_percent": 50}),
        ({"ratio": "1"}, {"ratio": 1.0}),
        ({"ratio": 0}, {"ratio": 0.0}),
        ({"mode": "cumulative"}, {"mode": "cumulative"}),
        ({"dry_run": "false"}, {"dry_run": False}),
        ({"dry_run": "YES"}, {"dry_run": True}),
        ({"at": "none"}, {"at": None}),
        ({"token": "PROM_TOKEN"}, {"token": "PROM_TOKEN"}),
        ({"source": 12}, {"source": "12"}),
    ],
)
def test_validate_coerces(schema, given, expected):
    assert validate(schema, given) == expected


@pytest.mark.parametrize(
    "given, fragment",
    [
        ({"target_pct": 5}, "unknown parameter 'target_pct'"),
        ({"target_pct": 5}, "Did you mean 'target_percent'"),
        ({"target_percent": "ten"}, "expected an integer in [0, 100]"),
        ({"target_percent": 101}, "out of range"),
        ({"target_percent": True}, "'target_percent'"),
        ({"ratio": "nan"}, "'ratio'"),
        ({"ratio": -0.1}, "[0, 1]"),
        ({"mode": "consecutiv"}, "did you mean 'consecutive'"),
        ({"mode": "x"}, "one of 'cumulative', 'consecutive'"),
        ({"dry_run": "maybe"}, "true or false"),
        ({"token": "s3cr3t-value!"}, "NAME of an environment variable"),
        ({"source": None}, "'source'"),
    ],
)
def test_validate_rejects_with_a_message_naming_the_parameter(schema, given, fragment):
    with pytest.raises(ParameterError) as info:
        validate(schema, given)
    assert fragment in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "cell, fragment",
    [
        ("x = 1", "expected 'name: type = default"),
        ("x: list = []", "unsupported annotation"),
        ("x: int = foo()", "default must be a literal"),
        ("x: int = (", "not valid Python"),
    ],
)
def test_bad_parameters_cell_is_a_parameter_error(cell, fragment):
    with pytest.raises(ParameterError) as info:
        parse_parameters_source(cell, "nb")
    assert fragment in str(info.value)


def test_read_schema_from_notebook_file(tmp_path, fixture_nb):
    schema = read_schema(fixture_nb("verdicts"))
    assert schema["level"].choices == ("OK", "WARN", "ACT", "ESCALATE")
    assert schema["count"].range == (1, 10)
    nb = tmp_path / "none.ipynb"
    nb.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert read_schema(nb).parameters == {}
