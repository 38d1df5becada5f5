"""QA 17, the postmortem and the security review: a Sentry spike inside one hour is found
whatever minutes the window starts at (the whole hours it overlaps, as `lsops errors`);
the traffic chart counts the impact window's requests as the bundle does (the closing
scrape that began a new series left out); an endpoint tested against the error-rate target
is not said to be "beyond its baseline"; one hour bursting in 401/403 and in 429 is one
hour; a malformed or BOM-prefixed npm audit file; the rotation's words."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from click.testing import CliRunner

from lsops_lib import plots, present
from lsops_lib.analysis.harm import harm
from lsops_lib.cli import main
from lsops_lib.config import Thresholds
from lsops_lib.security import audit, auth, rotation
from lsops_lib.sources.timeline import source_timeline
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.security import NPM_AUDIT, AuthPlant
from tests.test_monthly_review import _title

matplotlib.use("Agg")
pytestmark = pytest.mark.timeout(120)
T0 = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)


def _ms(d: datetime) -> int:
    return int(d.timestamp() * 1000)


# --- 2. a Sentry spike: the whole hours the window overlaps -----------------------------------


def _plant_spike(store: Store) -> None:
    """An issue first seen days before, with 1 event in the hour 01:00, 60 in 02:00 and
    2 in 03:00 (hourly buckets, as Sentry's stats)."""
    issue = {
        "issue_id": "4099",
        "short_id": "API-99",
        "title": "Error: Redis timeout",
        "culprit": "cache",
        "level": "error",
        "status": "unresolved",
        "substatus": "ongoing",
        "first_seen": _ms(T0 - timedelta(days=6)),
        "last_seen": _ms(T0 + timedelta(hours=3, minutes=10)),
        "events": 63,
        "users": 1,
        "permalink": "https://s/4099",
    }
    hourly = [
        {"issue_id": "4099", "hour": _ms(T0 + timedelta(hours=h)), "events": n}
        for h, n in ((1, 1), (2, 60), (3, 2))
    ]
    tables.record_sentry_issues(store, "default", T0 + timedelta(hours=4), [issue], hourly)


@pytest.mark.parametrize(
    ("start", "end", "detail"),
    [
        # inside one hour: that hour's 60 events against the hour before's 1
        (
            "02:05",
            "02:50",
            "60 events in the window's whole hours 2026-11-21 02:00 UTC .. "
            "2026-11-21 03:00 UTC (1 before it)",
        ),
        # on the hour: the window itself, nothing said about buckets
        ("02:00", "03:00", "60 events in the window (1 before it)"),
    ],
)
def test_a_sentry_spike_is_found_in_the_whole_hours_the_window_overlaps(
    sqlite_store: Store, start: str, end: str, detail: str
) -> None:
    _plant_spike(sqlite_store)
    lo = datetime.fromisoformat(f"2026-11-21T{start}+00:00")
    hi = datetime.fromisoformat(f"2026-11-21T{end}+00:00")
    rows, _ = source_timeline(sqlite_store, lo, hi, "default")
    spikes = rows[rows["event"] == "sentry spike"]
    assert [d.split(": ")[0] for d in spikes["detail"]] == [detail]
    # the store's read: the buckets overlapping [02:05, 02:50) is the hour 02:00 alone
    events = tables.sentry_events(sqlite_store, "default", lo, hi)
    assert dict(zip(events["issue_id"], events["events"], strict=True)) == {"4099": 60}


# --- 3. the traffic chart counts the impact window's requests as the bundle does ---------------


def _series() -> pd.DataFrame:
    """Scrapes every 5 min; the impact window 01:00-01:15 (scrapes at 01:05, 01:10 and the
    closing one at 01:15, whose delta holds 31 requests)."""
    ts = [T0 + timedelta(minutes=5 * i) for i in range(6, 20)]
    requests = {T0 + timedelta(minutes=65): 3, T0 + timedelta(minutes=75): 31}
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, utc=True),
            "period": ["window"] * len(ts),
            "requests": [requests.get(t, 10 if t < T0 + timedelta(hours=1) else 0) for t in ts],
            "errors": [0] * len(ts),
            "error_rate": [0.0] * len(ts),
            "mean_ms": [20.0] * len(ts),
        }
    )


def test_the_chart_leaves_out_the_closing_scrape_that_began_a_new_series() -> None:
    start, end = pd.Timestamp(T0 + timedelta(hours=1)), pd.Timestamp(T0 + timedelta(minutes=75))
    # the closing scrape at 01:15 began a new series (a restart): the bundle counts
    # 01:00 (0), 01:05 (3), 01:10 (0) = 3 requests
    fig = plots.window_traffic(_series(), start, end, restarts=pd.Series([end]))
    assert _title(fig.axes[0]) == "Requests per interval: 3 in the impact window"
    # without a restart there, its delta still covers the breach's end: 3 + 31
    fig = plots.window_traffic(_series(), start, end, restarts=pd.Series([start]))
    assert _title(fig.axes[0]) == "Requests per interval: 34 in the impact window"
    fig = plots.window_traffic(_series(), start, end)
    assert _title(fig.axes[0]) == "Requests per interval: 34 in the impact window"


# --- 4. tested against the target, not "beyond its baseline" ----------------------------------


def test_an_endpoint_without_baseline_traffic_is_said_against_the_target() -> None:
    window = pd.DataFrame(
        {"endpoint": ["/projects/:id"], "requests": [200], "errors": [20], "mean_ms": [30.0]}
    )
    ranked = harm(window, pd.DataFrame(), Thresholds())
    row = ranked.iloc[0]
    # expected at the 1 % target: 200 x 0.01 = 2 errors, 18 beyond
    assert row["reference"] == "target" and row["excess_errors"] == pytest.approx(18.0)
    finding = present.postmortem.harm_table(ranked, Thresholds())["finding"].iloc[0]
    assert finding == "errors beyond the 1 % error-rate target (no baseline traffic) (p < 0.001)"
    half = present.postmortem.harm_table(ranked, Thresholds(error_rate=0.005))["finding"]
    assert half.iloc[0].startswith("errors beyond the 0.5 % error-rate target")
    summary = {
        "impact_start": T0,
        "impact_end": T0 + timedelta(minutes=30),
        "duration_s": 1800.0,
        "requests": 200,
        "failed": 20,
        "error_rate": 0.1,
        "no_answer": 0,
        "observations": 6,
        "incidents": [],
        "harmed": [{"endpoint": "/projects/:id", "excess_errors": 18.0, "reference": "target"}],
    }
    text = present.postmortem.impact_sentence(summary)
    assert (
        "Most harmed endpoint: /projects/:id (18 errors beyond the error-rate target "
        "(no baseline traffic))." in text
    )


# --- 5. an hour bursting in both kinds is one hour ---------------------------------------------


def test_an_hour_bursting_in_401_and_429_is_one_hour(auth_store: AuthPlant) -> None:
    """Minimum 1 and factor 1: every covered hour (each has one 401) bursts in
    auth_failures, and the 15:00 and 16:00 hours in rate_limited too: 24 rows, 22 hours."""
    p = auth_store
    with Store(p.url) as store:
        result, _ = auth.auth_review(
            store, p.start, p.end, Thresholds(auth_burst_min=1, auth_burst_factor=1.0)
        )
    assert len(result["bursts"]) == p.hours_covered + 2
    assert result["reason"] == f"{p.hours_covered} hours burst above the baseline"


# --- 7. npm audit files: malformed counts, a BOM --------------------------------------------


def _report() -> dict:
    return json.loads((NPM_AUDIT / "vulnerable.json").read_text())


@pytest.mark.parametrize(
    "metadata",
    [
        {"vulnerabilities": {"critical": None, "total": None}, "dependencies": {"total": None}},
        {"vulnerabilities": {"critical": "two", "total": "3"}, "dependencies": "many"},
        {"vulnerabilities": {"critical": float("inf")}, "dependencies": {"total": float("nan")}},
        {"vulnerabilities": [1]},
        [1],
    ],
)
def test_malformed_metadata_counts_fall_back_to_the_listed_packages(
    tmp_path: Path, lsops_env: dict[str, str], metadata: object
) -> None:
    doc = {**_report(), "metadata": metadata}
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(doc))  # Infinity / NaN as npm would never write them
    listed = {
        s: sum(v.get("severity") == s for v in doc["vulnerabilities"].values())
        for s in audit.SEVERITIES
    }
    result = audit.read_audit_file(path)
    assert result["counts"] == {**listed, "total": len(doc["vulnerabilities"])}
    assert result["dependencies"] is None
    done = CliRunner().invoke(main, ["security", "--audit-file", str(path)], env=lsops_env)
    assert "Traceback" not in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_an_audit_file_with_a_bom_is_read(tmp_path: Path) -> None:
    text = (NPM_AUDIT / "vulnerable.json").read_text()
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    plain = audit.parse_audit(text, source="x")
    result = audit.read_audit_file(path)
    assert result["status"] == plain["status"] == "attention"
    assert result["counts"] == plain["counts"]


# --- 11. the rotation's words ----------------------------------------------------------------


def test_the_rotation_says_1_secret_and_all_n_secrets() -> None:
    today = date(2026, 11, 30)
    one = rotation.rotation({"A": today}, Thresholds(), today)
    two = rotation.rotation({"A": today, "B": today}, Thresholds(), today)
    assert one["reason"] == "1 secret rotated within the allowed age"
    assert two["reason"] == "all 2 secrets rotated within the allowed age"
