"""A postmortem whose window ends inside the outage (the incident's own bounds, given by
hand): the breach's end is the window's last observation, a failing one. The report said
"Back within thresholds at <that observation>"; it says the breach was still on."""

from __future__ import annotations

from datetime import timedelta

import matplotlib.pyplot as plt
import pytest

from lsops_lib import analysis as A
from lsops_lib import present
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from tests.fixtures.analysis import History


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    out: list[str] = []
    monkeypatch.setattr(present.display, "show_html", out.append)
    monkeypatch.setattr(present.postmortem, "show_html", out.append)
    present.begin()
    yield out
    plt.close("all")


def _outage(store: Store):  # noqa: ANN202 - the outage's first unanswered scrape
    h = History(store)
    for _ in range(24):
        h.traffic("/copilot/chat", 100, 50.0).scrape()
    outage = h.t
    for _ in range(8):  # 40 minutes without an answer (5-minute scrapes)
        h.scrape(answer=False)
    for _ in range(12):
        h.traffic("/copilot/chat", 100, 50.0).scrape()
    return outage


def test_a_window_ending_inside_the_outage_says_it_was_not_over(
    sqlite_store: Store, shown: list[str]
) -> None:
    outage = _outage(sqlite_store)
    inside = A.postmortem(sqlite_store, outage, outage + timedelta(minutes=20), Thresholds())
    last = outage + timedelta(minutes=15)  # the window's last observation, unanswered
    assert inside.impact_end == last
    present.show_resolution(inside, inside.restarts)
    page = "".join(shown)
    assert "Back within thresholds at" not in page, page
    assert "Not back within thresholds in the window" in page and "2026-10-01 02:15" in page
    said = present.postmortem.impact_sentence(inside.summary())
    assert "still breaching at the window's last observation" in said, said

    shown.clear()
    whole = A.postmortem(sqlite_store, outage, outage + timedelta(hours=1), Thresholds())
    present.show_resolution(whole, whole.restarts)
    page = "".join(shown)
    assert "Back within thresholds at 2026-10-01 02:40" in page, page
    assert "still breaching" not in present.postmortem.impact_sentence(whole.summary())
