"""QA 24: a token of a well-known format in a report's title (`sk-proj-...`, `ghp_...`, a
JWT) was archived as written in run.json, the HTML and the notebook, and named the run's
folder: only the configured secrets were masked. Such a title is refused, as a password
in a URL is; and a token of those formats that reaches a report otherwise (an API's
error message quoting a key) is masked in every archived file, an image's data left whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsops_lib.exceptions import ParameterError
from lsops_lib.reports import validate
from lsops_lib.reports.archive import MASK, Redactor

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WINDOW = {"start": "2026-10-03T14:00Z", "end": "2026-10-03T15:00Z"}
TOKENS = [
    "sk-proj-abcdefghijklmno",  # the QA's title
    "ghp_" + "A1b2C3d4E5" * 4,
    "github_pat_11ABCDEFG0123456789_abcdefghij",
    "xoxb-123456789012-abcdefABCDEF",
    "AKIAIOSFODNN7EXAMPLE",
    "sntrys_eyJpYXQiOjE2OTAwMDAwMDB9_abcdefghij",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "AIzaSyA-1234567890abcdefghijklmnopqrstu",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
]
PLAIN_TITLES = [
    "risk-assessment of the desk-booking outage",
    "API outage 2026-10-02 (sk-1 cache)",
    "Task-force: skip the eyJ check",
    "AKIA outage",  # a prefix alone is no key
]


@pytest.mark.parametrize("token", TOKENS)
def test_a_title_holding_a_token_is_refused(token: str) -> None:
    with pytest.raises(ParameterError) as caught:
        validate(
            "postmortem", {**WINDOW, "title": f"outage {token} leaked"}, notebooks_dir=NOTEBOOKS
        )
    assert str(caught.value) == (
        "parameter title holds what looks like a secret token (an API key, a JWT); leave it "
        "out: every archived file would carry it"
    )
    assert token not in str(caught.value)


@pytest.mark.parametrize("title", PLAIN_TITLES)
def test_plain_titles_are_taken(title: str) -> None:
    key, values = validate("postmortem", {**WINDOW, "title": title}, notebooks_dir=NOTEBOOKS)
    assert values["title"] == title.strip() and key


def test_tokens_in_archived_text_are_masked_images_kept() -> None:
    redactor = Redactor([])  # no configured secret: the formats alone
    for token in TOKENS:
        text = f'<td>upstream said: invalid key "{token}" (401)</td>'
        assert redactor.text(text) == f'<td>upstream said: invalid key "{MASK}" (401)</td>'
    # base64 of an image may hold a run that looks like a key: the data URI stays whole
    image = (
        "data:image/png;base64,iVBORw0KGgo" + "AIzaSyA1234567890abcdefghijklmnopqrstu" + "AAAA=="
    )
    page = f'<img src="{image}"> and AKIAIOSFODNN7EXAMPLE'
    assert redactor.text(page) == f'<img src="{image}"> and {MASK}'
    for title in PLAIN_TITLES:
        assert redactor.text(title) == title
