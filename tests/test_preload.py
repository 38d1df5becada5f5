"""`lsops_lib.preload`: the monthly review computed by the runner beside the kernel's start,
taken by the kernel only for the very same call (no kernel here: both sides in-process;
tests/test_notebooks.py runs them across a real kernel)."""

from __future__ import annotations

import os
import pickle
import threading
import time
from pathlib import Path

import pytest

from lsops_lib import preload
from lsops_lib.analysis import monthly_review
from lsops_lib.config import Thresholds, load_settings
from lsops_lib.store import Store
from tests.fixtures.monthly import two_months

REVIEW = {"metadata": {"lsops": {"preload": ["monthly_review"]}}}


def _store(path: Path) -> str:
    """September and October 2026 of hourly scrapes (tests/fixtures/monthly.py: October
    has 7,680 requests, counted by hand)."""
    url = f"sqlite:///{path / 'metrics.sqlite'}"
    store = Store(url)
    two_months(store)
    store.close()
    return url


@pytest.fixture
def key_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "preload"
    folder.mkdir()
    monkeypatch.setenv(preload.ENV, str(folder))
    return folder


def test_declared_preloads_are_known_names_in_the_lsops_metadata() -> None:
    assert preload.declared(REVIEW["metadata"]) == ["monthly_review"]
    assert preload.declared({"lsops": {"preload": ["monthly_review", "other", 3]}}) == [
        "monthly_review"
    ]
    assert preload.declared({}) == []
    assert preload.declared({"lsops": {"preload": "monthly_review"}}) == []


def test_the_key_names_every_argument_of_the_review() -> None:
    base = ("sqlite:///a.sqlite", "2026-10", "default", False, Thresholds())
    key = preload.review_key(*base)
    assert preload.review_key(*base) == key
    others = [
        ("sqlite:///b.sqlite", *base[1:]),
        (base[0], "2026-09", *base[2:]),
        (*base[:2], "other", *base[3:]),
        (*base[:3], True, base[4]),
        (*base[:4], Thresholds(availability_slo=0.99)),
    ]
    assert len({preload.review_key(*args) for args in others} | {key}) == len(others) + 1


def test_take_without_a_runner_or_for_another_call_is_none(
    key_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (key_dir / "monthly_review.key").write_text("the key")
    (key_dir / "monthly_review.pickle").write_bytes(pickle.dumps({"figures": 1}))
    assert preload.take("monthly_review", "another key") is None
    assert not (key_dir / "monthly_review.taken").exists()
    assert preload.take("monthly_review", "the key") == {"figures": 1}
    assert (key_dir / "monthly_review.taken").exists()
    monkeypatch.delenv(preload.ENV)
    assert preload.take("monthly_review", "the key") is None


def test_take_waits_for_the_runner_and_gives_up_on_its_failure(key_dir: Path) -> None:
    (key_dir / "monthly_review.key").write_text("k")

    def later() -> None:
        time.sleep(0.3)
        # whole or not there, as the runner writes it (a part, then os.replace): take()
        # polls for the file and must never see it half written
        part = key_dir / "monthly_review.pickle.part"
        part.write_bytes(pickle.dumps([1, 2, 3]))
        os.replace(part, key_dir / "monthly_review.pickle")

    writer = threading.Thread(target=later)
    writer.start()
    started = time.monotonic()
    assert preload.take("monthly_review", "k") == [1, 2, 3]
    assert time.monotonic() - started >= 0.25
    writer.join()
    (key_dir / "monthly_review.pickle").unlink()
    (key_dir / "monthly_review.failed").write_text("StoreError: locked")
    assert preload.take("monthly_review", "k") is None
    (key_dir / "monthly_review.failed").unlink()
    assert preload.take("monthly_review", "k", wait_s=0.05) is None  # never came


def test_the_runner_computes_the_review_the_kernel_would(tmp_path: Path) -> None:
    url = _store(tmp_path)
    settings = load_settings(env={"LSOPS_STORE": url}, cwd=tmp_path)
    values = {"month": "2026-10", "target": "default"}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with preload.start(REVIEW["metadata"], settings, values, scratch) as ready:
        assert ready.env == {preload.ENV: str(scratch / "preload")}
    assert ready.report() == {"monthly_review": "computed"}  # nobody took it
    taken = pickle.loads((scratch / "preload" / "monthly_review.pickle").read_bytes())
    store = Store(url)
    try:
        direct = monthly_review(store, "2026-10", settings.thresholds, target="default")
        key = preload.review_key(store.url, "2026-10", "default", False, settings.thresholds)
    finally:
        store.close()
    assert (scratch / "preload" / "monthly_review.key").read_text() == key
    assert taken.summary() == direct.summary()
    assert taken.summary()["totals"]["requests"] == 7680  # by hand (fixtures/monthly.py)


def test_nothing_is_preloaded_when_the_notebook_or_the_user_says_no(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _store(tmp_path)
    settings = load_settings(env={"LSOPS_STORE": url}, cwd=tmp_path)
    values = {"month": "2026-10", "target": "default"}
    cases = [
        ({}, values),  # a notebook that declares none
        (REVIEW["metadata"], {"target": "default"}),  # the month left to the notebook
    ]
    for metadata, given in cases:
        with preload.start(metadata, settings, given, tmp_path) as ready:
            assert ready.env == {} and ready.report() == {}
    # a store never collected is not created by the runner: the notebook says it is missing
    missing = tmp_path / "never-collected.sqlite"
    nowhere = load_settings(env={"LSOPS_STORE": f"sqlite:///{missing}"}, cwd=tmp_path)
    with preload.start(REVIEW["metadata"], nowhere, values, tmp_path) as ready:
        assert ready.env == {}
    assert not missing.exists()
    # a relative path names a file in the kernel's working directory, maybe not this one's
    relative = load_settings(env={"LSOPS_STORE": "sqlite:///metrics.sqlite"}, cwd=tmp_path)
    monkeypatch.chdir(tmp_path)
    with preload.start(REVIEW["metadata"], relative, values, tmp_path) as ready:
        assert ready.env == {}
    monkeypatch.setenv(preload.DISABLE_ENV, "1")
    with preload.start(REVIEW["metadata"], settings, values, tmp_path) as ready:
        assert ready.env == {}
    assert not (tmp_path / "preload").exists()


def test_a_failing_computation_is_said_and_left_to_the_kernel(tmp_path: Path) -> None:
    settings = load_settings(env={"LSOPS_STORE": "postgresql://u@127.0.0.1:1/x"}, cwd=tmp_path)
    values = {"month": "2026-10", "target": "default"}
    with preload.start(REVIEW["metadata"], settings, values, tmp_path) as ready:
        pass
    assert ready.report() == {"monthly_review": "failed"}
    reason = (tmp_path / "preload" / "monthly_review.failed").read_text()
    assert reason and "Traceback" not in reason
