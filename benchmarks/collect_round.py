"""One collection round over the first N targets of an lsops.toml, in a fresh process.

    python benchmarks/collect_round.py --config lsops.toml --targets 100 [--workers 16]

What a `lsops collect --once` process does (load the settings, open the store, scrape
/api/health?deep=true and /api/metrics, store), for N targets at once: the scrapes run in
a thread pool (I/O bound), each one `lsops_lib.collect.collect_once` into the one Store
(whose writes are serialized). Prints one JSON line: {targets, ok, seconds}.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

STARTED = time.perf_counter()

from lsops_lib.api import Client  # noqa: E402
from lsops_lib.cli import main as _cli  # noqa: E402, F401 - the imports of `lsops collect`
from lsops_lib.collect import collect_once  # noqa: E402
from lsops_lib.config import load_settings  # noqa: E402
from lsops_lib.store import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--targets", type=int, required=True)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    settings = load_settings(args.config)
    names = sorted(settings.targets)[: args.targets]
    store = Store(settings.store_url)

    def one(name: str) -> bool:
        client = Client.from_target(settings.targets[name])
        try:
            return collect_once(client, store, target=name, deep=True).ok
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=max(1, min(args.workers, len(names)))) as pool:
        oks = list(pool.map(one, names))
    store.close()
    print(
        json.dumps(
            {"targets": len(names), "ok": sum(oks), "seconds": time.perf_counter() - STARTED}
        )
    )


if __name__ == "__main__":
    main()
