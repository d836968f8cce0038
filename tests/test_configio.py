"""The JsonConfig mixin: fields checked against their annotations, nested groups, unknown
fields refused, JSON round trips; check_positive."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from latesearch._configio import JsonConfig, check_positive
from latesearch.errors import ConfigError, InputError


@dataclass(frozen=True)
class Inner(JsonConfig):
    size: int = 1
    names: tuple[str, ...] = ()

    def validate(self) -> None:
        self._check_ints("size")


@dataclass(frozen=True)
class Outer(JsonConfig):
    file_name = "outer.json"

    rate: float = 0.5
    label: str | None = None
    inner: Inner = field(default_factory=Inner)


@dataclass(frozen=True)
class Needs(JsonConfig):
    name: str


def test_values_are_converted_to_their_annotations():
    config = Outer(rate=2, inner={"names": ["a", "b"]})
    assert config.rate == 2.0 and isinstance(config.rate, float)
    assert config.inner == Inner(names=("a", "b"))
    inner = {"size": 1, "names": ["a", "b"]}
    assert config.to_dict() == {"rate": 2.0, "label": None, "inner": inner}


@pytest.mark.parametrize(
    ("data", "message", "name"),
    [
        ({"rate": "fast"}, "Outer.rate must be a number", "rate"),
        ({"rate": float("nan")}, "Outer.rate must be a finite number", "rate"),
        ({"label": 3}, "Outer.label must be a string or None", "label"),
        ({"inner": {"size": 0}}, "Outer.inner: Inner.size must be an integer >= 1", "size"),
        ({"inner": {"size": True}}, "Inner.size must be an integer", "size"),
        ({"inner": {"names": "ab"}}, "Inner.names must be a list", "names"),
        ({"inner": {"names": [1]}}, r"Inner.names\[0\] must be a string", "names[0]"),
        ({"inner": 5}, "Outer.inner must be an object of Inner fields", "inner"),
    ],
)
def test_bad_values_name_the_field(data, message, name):
    with pytest.raises(ConfigError, match=message) as caught:
        Outer.from_dict(data, source="test.json")
    assert str(caught.value).startswith("test.json: ")
    assert caught.value.field == name


def test_unknown_fields_are_refused_at_every_level():
    with pytest.raises(ConfigError, match=r"unknown Outer field\(s\) \['colour'\]"):
        Outer.from_dict({"colour": "red"})
    with pytest.raises(ConfigError, match=r"Outer.inner: unknown Inner field\(s\) \['sise'\]"):
        Outer.from_dict({"inner": {"sise": 2}})
    with pytest.raises(ConfigError, match="expected a JSON object"):
        Outer.from_dict([1])
    with pytest.raises(ConfigError, match=r"missing Needs field\(s\) \['name'\]"):
        Needs.from_dict({})


def test_save_load_by_file_or_folder_and_replace(tmp_path):
    config = Outer(label="x", inner=Inner(size=3))
    assert config.save(tmp_path) == tmp_path / "outer.json"
    assert Outer.load(tmp_path) == config
    assert Outer.load(config.save(tmp_path / "other.json")) == config
    assert config.replace(rate=1).rate == 1.0
    with pytest.raises(ConfigError, match="no Outer file"):
        Outer.load(tmp_path / "missing")


def test_check_positive():
    check_positive("k", 1)
    check_positive("depth", 0, minimum=0)
    for value in (0, -1, 1.0, True, "3", None):
        with pytest.raises(InputError, match="k must be an integer >= 1") as caught:
            check_positive("k", value)
        assert caught.value.field == "k"
    with pytest.raises(ConfigError):
        check_positive("k", 0, error=ConfigError)
