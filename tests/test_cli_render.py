"""The CLI's one renderer: JSON of raw values, tables of declared columns, the trace."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.text import Text

from lsops_lib import fmt
from lsops_lib.cli import render
from lsops_lib.cli.render import Column


def test_jsonable_is_strict_and_utc() -> None:
    paris = timezone(timedelta(hours=2))
    data = {
        "nan": float("nan"),
        "nat": pd.NaT,
        "na": pd.NA,
        "np_int": np.int64(7),
        "np_bool": np.bool_(True),
        "aware": datetime(2026, 10, 1, 14, 0, tzinfo=paris),
        "stamp": pd.Timestamp("2026-10-01T14:00", tz="Europe/Paris"),
        "rows": ({"a": np.float64(0.5)},),
    }
    out = render.jsonable(data)
    json.dumps(out, allow_nan=False)
    assert out["nan"] is None and out["nat"] is None and out["na"] is None
    assert out["np_int"] == 7 and isinstance(out["np_int"], int) and out["np_bool"] is True
    assert out["aware"] == "2026-10-01T12:00:00+00:00"
    assert out["stamp"] == "2026-10-01T12:00:00+00:00"
    assert out["rows"] == [{"a": 0.5}]


def test_records_keep_raw_values() -> None:
    frame = pd.DataFrame(
        {
            "n": np.array([1, 2], dtype=np.int64),
            "x": [0.5, np.nan],
            "ts": pd.to_datetime(["2026-10-01T00:00Z", None], utc=True),
            "cols": [["a", "b"], ["c"]],
        }
    )
    rows = render.records(frame)
    assert rows[0]["n"] == 1 and type(rows[0]["n"]) is int
    assert rows[1]["x"] is None and rows[1]["ts"] is None
    assert rows[0]["ts"] == pd.Timestamp("2026-10-01", tz="UTC")
    assert rows[0]["cols"] == ["a", "b"]
    assert render.records(frame, ["x", "n"])[0] == {"x": 0.5, "n": 1}
    assert render.records(None) == [] and render.records(frame.iloc[:0]) == []


def test_a_column_formats_with_fmt_and_never_markup() -> None:
    row = {"size_bytes": 1536, "name": "[bold]x[/bold]", "rate": None}
    assert Column("size_bytes", "size").cell(row).plain == fmt.size(1536) == "1.5 KiB"
    assert Column("name", "name").cell(row).plain == "[bold]x[/bold]"
    assert Column("rate", "rate", fmt.pct).cell(row).plain == fmt.DASH
    both = Column("name", "n", lambda v, r: f"{v}/{r['size_bytes']}", row=True)
    assert both.cell(row).plain == "[bold]x[/bold]/1536"
    styled = Column("name", "n", lambda v: Text(v, style="red")).cell(row)
    assert styled.style == "red"
    with pytest.raises(KeyError):  # a column can only show a key of its rows
        Column("missing", "m").cell(row)


def test_table_says_how_many_more_the_json_has(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"i": i} for i in range(5)]
    render.table(rows, [Column("i", "i")], title="numbers", limit=2)
    out = capsys.readouterr().out
    assert "3 more (use --json for all)" in out
    render.table([], [Column("i", "i")], title="numbers")
    assert "numbers: none" in capsys.readouterr().out


def test_emit_prints_the_same_data_both_ways(capsys: pytest.CaptureFixture[str]) -> None:
    data = {"when": datetime(2026, 10, 1, tzinfo=UTC), "rows": [{"b": 2048}]}

    def view(d: object) -> None:
        render.line(fmt.instant(d["when"]))  # type: ignore[index]
        render.table(d["rows"], [Column("b", "bytes", fmt.size)])  # type: ignore[index]

    render.emit(data, True, view)
    assert json.loads(capsys.readouterr().out) == {
        "when": "2026-10-01T00:00:00+00:00",
        "rows": [{"b": 2048}],
    }
    render.emit(data, False, view)
    out = capsys.readouterr().out
    assert "2026-10-01 00:00 UTC" in out and "2.0 KiB" in out


def test_trace_records_the_paths_a_view_reads(capsys: pytest.CaptureFixture[str]) -> None:
    data = {
        "a": 1,
        "unused": 2,
        "nested": {"x": 3},
        "rows": [{"k": 1, "v": 2}, {"k": 3, "v": 4}],
        "tags": ["p", "q"],
    }

    def view(d: object) -> None:
        render.line(str(d["a"] + d["nested"]["x"]))  # type: ignore[index]
        render.table(d["rows"][:1], [Column("k", "k")])  # type: ignore[index]
        render.line(", ".join(d["tags"]))  # type: ignore[index]
        assert d.get("absent") is None  # type: ignore[attr-defined]

    with render.trace() as seen:
        render.emit(data, False, view)
        render.show({"m": 1}, lambda d: d["m"], at="runs[]")
    assert seen.views == 2
    assert seen.reads == {"a", "nested", "nested.x", "rows", "rows[].k", "tags", "runs[].m"}
    assert seen.reads <= render.paths(data) | {"runs[].m"}
    assert render.paths({"rows": [{"k": 1}, {"j": 2}]}) == {"rows", "rows[].k", "rows[].j"}
    assert render._TRACE is None  # noqa: SLF001 - off again after the block


@pytest.mark.parametrize(
    ("n", "noun", "plural", "text"),
    [
        (0, "restart", None, "0 restarts"),
        (1, "restart", None, "1 restart"),
        (np.int64(1), "fatal log entry", "fatal log entries", "1 fatal log entry"),
        (2, "fatal log entry", "fatal log entries", "2 fatal log entries"),
        (13000, "request", None, "13,000 requests"),
        (1888.0, "row", None, "1,888 rows"),
        (None, "row", None, "– rows"),
    ],
)
def test_counted_words(n: Any, noun: str, plural: str | None, text: str) -> None:
    assert fmt.counted(n, noun, plural) == text
