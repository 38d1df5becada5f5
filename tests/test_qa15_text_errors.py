"""QA 15, the words of the Errors section and of the postmortem summary: a source with no
data in the month reads "unknown" (never a green "ok"), counts agree with their nouns
("1 restart"), and a postmortem that could not be computed says so once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lsops_lib import present
from lsops_lib.config import Thresholds, load_settings
from lsops_lib.present import display
from lsops_lib.sources.collect import collect_logs
from lsops_lib.sources.settings import LogSettings, SourceSettings
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.analysis import History
from tests.fixtures.sources import Pm2Log

pytestmark = pytest.mark.timeout(120)
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    out: list[str] = []
    monkeypatch.setattr(display, "_display", lambda obj, **_kw: out.append(str(obj.data)))
    present.begin()
    return out


def _sample(store: Store, at: datetime, restarts: int) -> None:
    tables.record_pm2(
        store,
        "default",
        at,
        [
            {
                "app": "longsang-api",
                "pm_id": 0,
                "pid": 1,
                "status": "online",
                "restarts": restarts,
                "unstable_restarts": 0,
                "cpu": 12.0,
                "memory": 1,
                "uptime_s": 1.0,
            }
        ],
    )


def _november(path: Path, folder: Path) -> None:
    """Every source collected in November only: Sentry (no issue), one new error log
    line, two pm2 samples with one restart between them (0 -> 1)."""
    with Store(f"sqlite:///{path}") as store:
        log = Pm2Log(folder)
        log.write("Error: connect ECONNREFUSED 127.0.0.1:5432", NOV + 2 * DAY)
        collect_logs(store, SourceSettings(logs=LogSettings(paths=(str(log.path),))), "default")
        _sample(store, NOV + 2 * DAY, 0)
        _sample(store, NOV + 3 * DAY, 1)
        for name in ("sentry", "logs", "pm2"):
            tables.record_source_run(
                store, "default", name, NOV + 3 * DAY, ok=True, items=1, error=None
            )


def _section(tmp_path: Path, start: datetime, end: datetime, shown: list[str]) -> str:
    settings = load_settings(env={}, cwd=tmp_path)
    source = present.open_store(f"sqlite:///{tmp_path / 'store.sqlite'}", settings)
    review = present.errors.errors_review(settings, source, start, end, target="default")
    shown.clear()
    present.errors.show_errors(review)
    return "".join(shown)


def test_a_month_without_data_of_a_source_reads_unknown_not_ok(
    tmp_path: Path, shown: list[str]
) -> None:
    """The sources were collected in November: October holds no Sentry collection, no log
    line and no pm2 sample, so each part is unknown and says why (the Access part of the
    same report says "unknown" too)."""
    _november(tmp_path / "store.sqlite", tmp_path)
    october = _section(tmp_path, OCT, NOV, shown)
    assert ": ok" not in october, october
    assert "Sentry: unknown" in october and "no collection of Sentry in the month" in october
    assert "Logs: unknown" in october and "no log line collected in the month" in october
    assert "pm2: unknown" in october and "no pm2 sample collected in the month" in october
    assert "CPU p95 –" not in october  # no figure of samples that do not exist


def test_a_month_with_data_is_judged_and_its_counts_agree_with_their_nouns(
    tmp_path: Path, shown: list[str]
) -> None:
    """November: Sentry collected with no issue is ok; one new error pattern, one restart."""
    _november(tmp_path / "store.sqlite", tmp_path)
    november = _section(tmp_path, NOV, DEC, shown)
    assert "unknown" not in november, november
    assert "Sentry: ok" in november  # collected in the month, and no issue
    assert "Logs: attention" in november and "1 new error pattern<" in november
    assert "pm2: attention" in november and "1 restart;" in november
    assert "1 restarts" not in november and "1 new error patterns" not in november


def test_a_postmortem_that_could_not_be_computed_says_why_once(
    sqlite_store: Store, shown: list[str]
) -> None:
    """A baseline of -5 hours (it would end after it starts): the figures cannot be
    computed, and the summary box gives the reason once (not "The figures could not be
    computed: the figures could not be computed: ...")."""
    t0 = datetime(2026, 10, 2, 2, 0, tzinfo=UTC)
    History(sqlite_store, start=t0).run(13, {"/a": (10, 20.0, 0)})
    source = present.open_store(str(sqlite_store.engine.url))
    window = present.choose_window(
        source, Thresholds(), start=t0, end=t0 + timedelta(hours=1), title="x"
    )
    pm = present.load_postmortem(source, window, Thresholds(), baseline_hours=-5)
    assert pm.problem and pm.problem.startswith("ParameterError")
    shown.clear()
    present.postmortem.show_pm_summary(pm)
    page = "".join(shown).lower()
    assert page.count("could not be computed") == 1, page
    assert f"the figures could not be computed: {pm.problem.lower()}" in page
