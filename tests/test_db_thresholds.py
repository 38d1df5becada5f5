"""Every threshold is settable in lsops.toml [thresholds]: each field of `config.Thresholds`
and of `db.settings.DbThresholds` (the database checks'), one by one; unknown names are
refused with the list of the known ones; the README lists exactly these names."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from lsops_lib.config import Thresholds, load_settings
from lsops_lib.db import DbThresholds
from lsops_lib.exceptions import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"
ALL = sorted({f.name for f in fields(Thresholds)} | {f.name for f in fields(DbThresholds)})
DB = {f.name for f in fields(DbThresholds)}


def _settings(tmp_path: Path, body: str) -> Thresholds:
    path = tmp_path / "lsops.toml"
    path.write_text(f"[thresholds]\n{body}\n")
    return load_settings(path, env={}, cwd=tmp_path).thresholds


def _other_value(name: str) -> int | float:
    """A value unlike the default, of the field's type."""
    default = getattr(Thresholds(), name)
    # fractions stay within 0 .. 1 (refused beyond); differs from every default (none is 0.25)
    return default * 3 + 7 if isinstance(default, int) else default / 2 + 0.125


@pytest.mark.parametrize("name", ALL)
def test_each_threshold_is_settable_in_lsops_toml(tmp_path: Path, name: str) -> None:
    value = _other_value(name)
    got = _settings(tmp_path, f"{name} = {value!r}")
    assert getattr(got, name) == value
    assert type(getattr(got, name)) is type(getattr(Thresholds(), name))
    if name in DB:  # and reaches the database checks
        assert getattr(DbThresholds.from_settings(got), name) == value
    # the others keep their defaults
    others = {f.name for f in fields(Thresholds)} - {name}
    assert all(getattr(got, n) == getattr(Thresholds(), n) for n in others)


def test_the_database_checks_default_to_the_settings_defaults() -> None:
    assert DB <= {f.name for f in fields(Thresholds)}
    assert DbThresholds.from_settings(Thresholds()) == DbThresholds()
    assert all(getattr(DbThresholds(), n) == getattr(Thresholds(), n) for n in DB)


def test_an_unknown_threshold_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, "long_runing_s = 60")
    message = str(info.value)
    assert "unknown threshold 'long_runing_s'" in message and "\n" not in message
    listed = message.split("(known: ", 1)[1].rstrip(")").split(", ")
    assert listed == ALL


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("45", 45.0),
        ("0", 0.0),
        ('"0d"', 0.0),
        ('"30d"', 30.0),
        ('"4w"', 28.0),
        ('"36h"', 1.5),
        ("7.5", 7.5),
    ],
)
def test_unused_index_min_age_in_days_or_as_a_duration(
    tmp_path: Path, text: str, days: float
) -> None:
    assert _settings(tmp_path, f"unused_index_min_age = {text}").unused_index_min_age == days


@pytest.mark.parametrize(
    "body",
    [
        'unused_index_min_age = "soon"',
        "unused_index_min_age = -1",
        'long_running_s = "5m"',  # a duration only where the name says so
        "long_running_s = true",
        "dead_tuples_min = -5",
        'cache_hit_ratio = "nan"',
        "bloat_min_bytes = [1]",
    ],
)
def test_bad_threshold_values_are_one_line(tmp_path: Path, body: str) -> None:
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, body)
    assert "\n" not in str(info.value) and body.split(" =")[0] in str(info.value)


def test_the_readme_lists_exactly_the_thresholds() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Thresholds", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
    assert sorted(listed) == ALL
    assert len(listed) == len(set(listed))
    for name in listed:  # each with its default, as lsops has it
        row = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
        default = getattr(Thresholds(), name)
        shown = str(default) if isinstance(default, int) else f"{default:g}"
        assert f"| {shown} |" in row, row
