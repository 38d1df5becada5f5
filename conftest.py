"""Root conftest: shared fixtures live in tests/fixtures/<concern>.py, one file per owner.

The whole session (and every process it starts) gets its own `XDG_DATA_HOME`, so a test that
falls back to lsops's default store (`~/.local/share/lsops/metrics.sqlite`) reads and writes a
throwaway one: never the store of the person (or the CI machine) running the suite, whose
schema may be newer or older than this checkout's.
"""

import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path

_DATA_HOME = tempfile.mkdtemp(prefix="lsops-tests-data-")
os.environ["XDG_DATA_HOME"] = _DATA_HOME
os.environ.pop("LSOPS_DATA", None)
atexit.register(shutil.rmtree, _DATA_HOME, True)

# A suite started in the background of a non-interactive shell (`make test &`, nohup) inherits
# SIGINT ignored, and so do the lsops processes its tests start: the tests of Ctrl-C need
# Python's own handler, as under a terminal or CI (exec'd children then get the default).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

pytest_plugins = [
    f"tests.fixtures.{p.stem}"
    for p in sorted((Path(__file__).parent / "tests" / "fixtures").glob("*.py"))
    if p.stem != "__init__"
]
