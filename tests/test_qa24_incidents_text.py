"""QA 24: `lsops incidents` printed the command that writes a postmortem for every
incident but the restarts, while its help says "each with the command" and --json gives
the restarts' too: the text lists the same commands as the JSON, in its order."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.store import Store
from lsops_lib.times import to_ms
from tests.fixtures.store import START, T0, make_scrape


def test_the_text_lists_every_incidents_postmortem_command(
    tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    restarted = to_ms(T0 + timedelta(minutes=42))  # a new process between 40 and 45
    with Store(url) as store:
        for m in range(0, 120, 5):
            up = START if m < 45 else restarted
            count = m + 1 if m < 45 else m - 44
            store.record_scrape(make_scrape(m, {"/a": (count, 10.0, 0.0)}, uptime_start=up))
    env = {**lsops_env, "LSOPS_STORE": url}
    window = ["--since", T0.isoformat(), "--until", (T0 + timedelta(hours=2)).isoformat()]
    data = json.loads(CliRunner().invoke(main, ["incidents", *window, "--json"], env=env).stdout)
    assert [i["kind"] for i in data] == ["restart"]
    text = CliRunner().invoke(main, ["incidents", *window], env={**env, "COLUMNS": "400"})
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    listed = [line.strip() for line in lines[lines.index("write a postmortem:") + 1 :]]
    assert listed == [data[0]["postmortem_command"]]
    assert listed[0].startswith("lsops report postmortem --start ")
