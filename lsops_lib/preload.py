"""A report's data computed beside its kernel's start (the runner's side and the kernel's).

A report kernel spends its first seconds starting (ipykernel, pandas, matplotlib, lsops_lib)
before its setup cell asks for the data; the runner's process waits meanwhile, and the
machine has a second core. A notebook that declares a preload in its metadata

    "metadata": {"lsops": {"preload": ["monthly_review"]}}

gets that bundle computed by `run_report` on a thread of its own while the kernel starts
(`start`), written pickled to the run's scratch directory (private, removed with it,
never archived). In the kernel, `present.load_review` asks `take(name, key)` first:

- it answers only for the very same call: the key names the store, the month, the target,
  the monitoring choice and the thresholds (`review_key`); a notebook edited to ask for
  anything else computes its own, as does a notebook run by papermill or JupyterLab
  without the runner (no `LSOPS_PRELOAD` in its environment);
- while the runner is still computing, it waits (at most `WAIT_S`) rather than computing
  the same figures a second time on the same cores;
- when the runner's computation failed, it answers None and the kernel computes (and
  shows the error itself).

The runner reads the store once, as of the run's start: the same figures the kernel
would have computed a few seconds later (a closed month does not change; a current one
may miss a scrape stored in those seconds, as a run started a few seconds earlier would).

Only the monthly review is preloaded (`PRELOADS`): its bundle is the one long read of a
report's first cell (~1-2 s of a month of one-minute scrapes). `run.json` says what was
preloaded and whether the kernel took it (`preload`).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

ENV = "LSOPS_PRELOAD"  # the kernel's environment: the directory of this run's preloads
DISABLE_ENV = "LSOPS_NO_PRELOAD"  # "1" in the runner's environment: never preload
WAIT_S = 300.0  # how long a kernel waits for a preload still being computed
_POLL_S = 0.01


def declared(metadata: Mapping[str, Any]) -> list[str]:
    """The preloads a notebook's metadata declares (`lsops.preload`), known ones only."""
    lsops = metadata.get("lsops") if isinstance(metadata, Mapping) else None
    names = lsops.get("preload") if isinstance(lsops, Mapping) else None
    if not isinstance(names, list):
        return []
    return [n for n in names if isinstance(n, str) and n in PRELOADS]


def review_key(
    store_url: str, month: str, target: str | None, include_monitoring: bool, thresholds: Any
) -> str:
    """The monthly review's key: the store (its URL without password), the month, the
    target, the monitoring choice and every threshold."""
    return json.dumps(
        [store_url, month, target, bool(include_monitoring), repr(thresholds)], sort_keys=True
    )


# --- the runner's side ---------------------------------------------------------------------


def _monthly_review(settings: Any, values: Mapping[str, Any]) -> tuple[str, Callable[[], Any]]:
    """(key, compute) of the review the monthly-review notebook's setup cell will ask for,
    from the injected parameters; ValueError when they leave it to the notebook (no month
    or target given: the notebook resolves those itself)."""
    from .config import redact_url, sqlite_path

    month, target = values.get("month"), values.get("target")
    if not month or not target:
        raise ValueError("month and target are resolved by the notebook")
    url = str(values.get("store") or settings.store_url or "")
    if not url:
        raise ValueError("no store")
    path = sqlite_path(url)
    if path is not None:
        if not path.is_absolute():  # relative to the kernel's working directory, not ours
            raise ValueError("a relative store path is the notebook's to resolve")
        if not path.exists():  # never created here (opening creates it): the notebook
            raise ValueError("the store does not exist")  # reports it missing
    monitoring = bool(values.get("include_monitoring") or False)
    key = review_key(
        redact_url(url) or "", str(month), str(target), monitoring, settings.thresholds
    )

    def compute() -> Any:
        from .analysis import monthly_review
        from .store import Store

        store = Store(url)
        try:
            return monthly_review(
                store, str(month), settings.thresholds, target=str(target),
                include_monitoring=monitoring,
            )  # fmt: skip
        finally:
            store.close()

    return key, compute


PRELOADS: dict[str, Callable[[Any, Mapping[str, Any]], tuple[str, Callable[[], Any]]]] = {
    "monthly_review": _monthly_review,
}


class Preloads:
    """The preloads of one run, computed on a thread (`start`); `env` for the kernel;
    `report()` for run.json once the kernel is done."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env: dict[str, str] = {}
        self.names: list[str] = []
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    def _run(self, jobs: list[tuple[str, Callable[[], Any]]]) -> None:
        for name, compute in jobs:
            if self._cancel.is_set():
                return
            try:
                data = pickle.dumps(compute(), protocol=pickle.HIGHEST_PROTOCOL)
                suffix = ".pickle"
            except Exception as exc:  # noqa: BLE001 - the kernel computes it (and shows why)
                data, suffix = f"{type(exc).__name__}: {exc}".encode(), ".failed"
            if self._cancel.is_set():
                return
            part = self.folder / f"{name}.part"
            part.write_bytes(data)
            os.replace(part, self.folder / f"{name}{suffix}")  # whole, or not there

    def report(self) -> dict[str, str]:
        """Per preload: "taken" (the kernel used it), "computed" (ready, not taken: the
        notebook asked for something else or nothing), "failed", or "pending"."""
        out: dict[str, str] = {}
        for name in self.names:
            if (self.folder / f"{name}.taken").exists():
                out[name] = "taken"
            elif (self.folder / f"{name}.pickle").exists():
                out[name] = "computed"
            elif (self.folder / f"{name}.failed").exists():
                out[name] = "failed"
            else:
                out[name] = "pending"
        return out

    def close(self, *, wait: bool = True) -> None:
        """`wait`: wait for the computation to end (its file written). Else abandon it on
        its daemon thread, which writes nothing more."""
        if self._thread is None:
            return
        if wait:
            self._thread.join()
        else:
            self._cancel.set()


@contextlib.contextmanager
def start(
    metadata: Mapping[str, Any], settings: Any, values: Mapping[str, Any], scratch: Path
) -> Iterator[Preloads]:
    """Compute the notebook's declared preloads beside the run (see the module docstring).
    Nothing happens when it declares none, when `LSOPS_NO_PRELOAD=1`, or when the
    parameters leave what to compute to the notebook."""
    preloads = Preloads(scratch / "preload")
    jobs: list[tuple[str, Callable[[], Any]]] = []
    if os.environ.get(DISABLE_ENV) != "1":
        for name in declared(metadata):
            try:
                key, compute = PRELOADS[name](settings, values)
            except (ValueError, TypeError, AttributeError):
                continue
            jobs.append((name, compute))
            preloads.folder.mkdir(exist_ok=True)
            (preloads.folder / f"{name}.key").write_text(key)
    if jobs:
        preloads.names = [name for name, _ in jobs]
        preloads.env = {ENV: str(preloads.folder)}
        preloads._thread = threading.Thread(
            target=preloads._run, args=(jobs,), name="lsops-preload", daemon=True
        )
        preloads._thread.start()
    finished = False
    try:
        yield preloads
        finished = True
    finally:
        # a run that ends normally waits for the thread (bounded by the same read the
        # kernel would have made); an interrupted one leaves it behind, writing nothing
        preloads.close(wait=finished)


# --- the kernel's side ---------------------------------------------------------------------


def take(name: str, key: str, *, wait_s: float = WAIT_S) -> Any | None:
    """The runner's `name` for `key`, or None (no runner, another key, its computation
    failed, or not ready within `wait_s`): then the caller computes it."""
    folder = os.environ.get(ENV)
    if not folder:
        return None
    base = Path(folder)
    try:
        if (base / f"{name}.key").read_text() != key:
            return None
    except OSError:
        return None
    done, failed = base / f"{name}.pickle", base / f"{name}.failed"
    deadline = time.monotonic() + wait_s
    while not done.exists():
        if failed.exists() or time.monotonic() > deadline or not base.is_dir():
            return None
        time.sleep(_POLL_S)
    try:
        value = pickle.loads(done.read_bytes())
    except Exception:  # noqa: BLE001 - unreadable: computed here instead
        return None
    with contextlib.suppress(OSError):
        (base / f"{name}.taken").touch()
    return value
