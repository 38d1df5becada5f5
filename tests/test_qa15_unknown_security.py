"""QA 15: the security review's unknown parts give no figure (null in JSON, "–" in the
text), never a measured-looking 0 or an empty list: auth over a window the collector never
covered, secrets without [secrets], an npm audit that failed; and so the review's key
figures (`SecurityReview.summary()`).

The store is the planted day of tests/fixtures/security.py (`AuthPlant`: nothing before
2026-10-01), the audit a real npm error object (tests/data/npm-audit/).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.config import Thresholds, load_settings
from lsops_lib.security import rotation, security_review
from lsops_lib.store import Store
from tests.fixtures.security import NPM_AUDIT, AuthPlant

COUNTS = ("unauthorized", "forbidden", "rate_limited", "auth_failures")
REFUSED = NPM_AUDIT / "registry-refused.json"  # npm's 405: the audit is unknown


def _env(lsops_env: dict[str, str], tmp_path: Path, store: str) -> dict[str, str]:
    return {**lsops_env, "LSOPS_STORE": store, "LSOPS_DATA": str(tmp_path), "COLUMNS": "200"}


def test_a_window_the_collector_never_covered_counts_nothing(
    lsops_env: dict[str, str], tmp_path: Path, auth_store: AuthPlant
) -> None:
    env = _env(lsops_env, tmp_path, auth_store.url)
    day_before = ["--since", (auth_store.start - timedelta(days=1)).isoformat()]
    args = ["security", "--audit-file", str(REFUSED), *day_before]
    args += ["--until", auth_store.start.isoformat()]
    runner = CliRunner()
    result = runner.invoke(main, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output  # unknown, nothing needs attention
    a = json.loads(result.stdout)["auth"]
    assert a["status"] == "unknown" and a["hours_covered"] == 0  # zero hours: a fact
    assert {k: a[k] for k in COUNTS} == dict.fromkeys(COUNTS)
    assert a["baseline"] == {"auth_failures": None, "rate_limited": None}
    assert (a["bursts"], a["by_endpoint"], a["by_hour"]) == (None, None, None)
    text = runner.invoke(main, args, env=env)
    assert text.exit_code == 0 and "Traceback" not in text.output
    flat = " ".join(text.stdout.split())
    assert "auth: UNKNOWN" in flat and "x 401" not in flat, flat  # no line of figures
    assert "baseline per hour" not in flat

    # the planted day itself: the counts stated by the plant (a covered window is counted)
    day = ["--since", auth_store.start.isoformat(), "--until", auth_store.end.isoformat()]
    covered = runner.invoke(
        main, ["security", "--audit-file", str(REFUSED), *day, "--json"], env=env
    )
    a = json.loads(covered.stdout)["auth"]
    assert (a["unauthorized"], a["forbidden"], a["rate_limited"]) == (
        auth_store.unauthorized,
        auth_store.forbidden,
        auth_store.rate_limited,
    )


def test_unknown_parts_leave_the_key_figures_unknown(tmp_path: Path) -> None:
    """No [secrets], npm's error object, no store: every figure None; the review's key
    figures too (the monthly review reads them)."""
    settings = load_settings(env={"LSOPS_DATA": str(tmp_path)}, cwd=tmp_path)
    review = security_review(settings, audit_file=REFUSED, store=None, store_problem="no store")
    assert {p["status"] for p in review.as_dict().values()} == {"unknown"}
    s = review.secrets
    assert (s["due"], s["overdue"], s["secrets"]) == (None, None, None)
    assert review.audit["counts"] is None and review.audit["vulnerabilities"] is None
    assert review.auth["bursts"] is None
    summary = review.summary()
    for key in ("secrets_due", "secrets_overdue", "vulnerabilities", "auth_failures"):
        assert summary[key] is None, key
    assert summary["auth_bursts"] is None
    assert json.loads(json.dumps(review.as_dict(), default=str))["secrets"]["due"] is None


def test_known_zeros_stay_zeros(auth_store: AuthPlant) -> None:
    """A configured secret rotated today is 0 due, 0 overdue; a covered quiet hour, 0."""
    today = date(2026, 11, 30)
    fine = rotation.rotation({"A": today}, Thresholds(), today)
    assert (fine["due"], fine["overdue"], len(fine["secrets"])) == (0, 0, 1)
    quiet = auth_store.start + timedelta(hours=1)  # 01:00: one 401 on /copilot/chat only
    with Store(auth_store.url) as store:
        review = security_review(
            None, store=store, start=quiet, end=quiet + timedelta(hours=1), thresholds=Thresholds()
        )
    assert (review.auth["unauthorized"], review.auth["rate_limited"]) == (1, 0)
    assert review.summary()["auth_bursts"] == 0 and review.auth["bursts"] == []


def test_the_reviews_security_section_shows_an_unknown_auth_part(
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    """A month the collector never covered: the section says unknown, and is not a
    failed section (its figures are null now, not 0)."""
    from datetime import UTC, datetime

    from lsops_lib import present
    from lsops_lib.config import load_settings
    from lsops_lib.store import Store
    from tests.fixtures.store import make_scrape

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as store:
        store.record_scrape(make_scrape(0, {"/a": (1, 10.0, 0.0)}))  # October 2026 only
    settings = load_settings(None, env={"LSOPS_STORE": url})
    shown: list[str] = []
    present.begin()
    source = present.open_store(None, settings)
    start, end = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)
    review = present.security.security_review(settings, source, start, end)
    assert review.auth["status"] == "unknown" and review.auth["unauthorized"] is None
    monkeypatch.setattr(present.display, "show_html", shown.append)
    monkeypatch.setattr(present.security, "show_html", shown.append)
    present.security.show_security(review)
    assert present.PROBLEMS == [], present.PROBLEMS
    assert "unknown" in "".join(shown).lower()
