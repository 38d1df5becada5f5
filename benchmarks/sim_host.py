"""Serve N simulated LongSang APIs (real clock) until stdin closes; print their URLs.

    python benchmarks/sim_host.py 100     ->  one JSON line: ["http://127.0.0.1:PORT", ...]

Run in its own process so that the servers' work is not the collector's.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

from lsops_lib.sim import Scenario, SimulatedAPI


def main() -> None:
    count = int(sys.argv[1])
    start = datetime.now(UTC) - timedelta(minutes=10)
    apis = [
        SimulatedAPI(Scenario.default(start, seed=i, incidents=False)).start() for i in range(count)
    ]
    print(json.dumps([api.url for api in apis]), flush=True)
    try:
        sys.stdin.read()  # until the benchmark closes our stdin
    finally:
        for api in apis:
            api.stop()


if __name__ == "__main__":
    main()
