"""A store that refuses writes for several rounds of `lsops collect --every`: stderr says
it once when it starts and once when it is over (an hour of 1-minute rounds used to be
120 lines of the same error), and every round's own line still says "NOT stored"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_faults_collect import ROOT
from tests.test_faults_collect import api as api  # the simulated API fixture

pytestmark = pytest.mark.timeout(120)

FAILING = """
import sys
from lsops_lib.exceptions import StoreError
from lsops_lib.store import Store

real, seen = Store.record_scrape, []

def record_scrape(self, scrape, *a, **kw):  # scrapes 2 and 3: the store refuses the write
    if scrape.id not in seen:
        seen.append(scrape.id)
    if 2 <= seen.index(scrape.id) + 1 <= 3:
        raise StoreError(f"cannot write scrape {scrape.id} to the store: disk I/O error")
    return real(self, scrape, *a, **kw)

Store.record_scrape = record_scrape
from lsops_lib.cli import main
sys.argv = ["lsops", "collect", "--every", "200ms", "--quick"]
main()
"""


def test_a_store_outage_is_said_when_it_starts_and_when_it_ends(
    api: object, tmp_path: Path
) -> None:
    env = {**os.environ, "LSOPS_API_URL": api.url, "PYTHONPATH": str(ROOT)}  # type: ignore[attr-defined]
    env["LSOPS_STORE"] = f"sqlite:///{tmp_path / 's.sqlite'}"
    for name in ("LSOPS_CONFIG", "LSOPS_TARGET", "LSOPS_API_TOKEN"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-c", FAILING],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        stored = 0
        assert proc.stdout is not None
        while stored < 3 and time.monotonic() < deadline:  # the first, and two after the outage
            out = proc.stdout.readline()
            if not out:
                break
            stored += " stored" in out and "NOT stored" not in out
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    errors = [line for line in stderr.splitlines() if line.strip()]
    assert len(errors) == 2, stderr
    assert errors[0].startswith("lsops: cannot write scrape ") and "disk I/O error" in errors[0]
    assert errors[1] == "lsops: the store: working again after 2 failed rounds"
