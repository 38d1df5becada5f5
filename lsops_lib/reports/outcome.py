"""Whether a report that ran is a success, a partial success or a failure (issue 13).

Every report notebook ends with its key figures (`present.read_key_figures(nb)`): the
sections that could not be produced (`problems`: [{section, kind, reason}]), the metrics
store's availability (`store`), and for the database report whether the database was
`reachable`. A notebook that runs to its end is not yet a successful report: the runner
judges these figures with the rules its kind names (`Kind.fails_when` in parameters.py):

- a rule that holds makes the run FAILED (exit 1, `status: failed`, the reason as the
  run's `error` in run.json and at the top of the HTML): the report's data source is
  down, or nothing could be computed;
- every other problem is a WARNING: the run succeeded partially (`status: succeeded`,
  `warnings: [...]` in run.json, listed at the top of the HTML, exit 0).

    outcome = judge("db-optimization", read_key_figures(nb))
    outcome.failures   # ["the database cannot be reached: cannot connect to ..."]
    outcome.warnings   # ["Queries: pg_stat_statements is not installed", ...]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RULES", "NO_KEY_FIGURES", "Outcome", "Rule", "judge"]

NO_KEY_FIGURES = "the notebook showed no key figures (its last cell): nothing could be checked"


@dataclass(frozen=True)
class Rule:
    """A condition on the key figures that makes a run failed.

    `check(figures)` returns None when the condition does not hold, else the detail (the
    underlying reason); the failure reads `f"{text}: {detail}"`. Problems whose reason
    quotes the detail, or whose section is one of `sections`, are explained by the
    failure and not repeated as warnings. `after_failure`: checked even when an earlier
    rule already failed the run (a consequence of an earlier failure is not repeated)."""

    name: str
    text: str
    check: Callable[[Mapping[str, Any]], str | None]
    sections: tuple[str, ...] = ()
    after_failure: bool = True


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    @property
    def error(self) -> str | None:
        return "; ".join(self.failures) if self.failures else None


def _problems(figures: Mapping[str, Any]) -> list[dict[str, str]]:
    found = figures.get("problems")
    if not isinstance(found, list):
        return []
    return [
        {k: str(p.get(k) or "") for k in ("section", "kind", "reason")}
        for p in found
        if isinstance(p, Mapping)
    ]


def _store_down(figures: Mapping[str, Any]) -> str | None:
    store = figures.get("store")
    if isinstance(store, Mapping):
        if store.get("available") is False:
            return str(store.get("problem") or "unknown reason")
        return None
    if isinstance(store, str) and store.startswith("no usable metrics store"):
        return store  # the short form of a review that could not be computed
    return None


def _database_down(figures: Mapping[str, Any]) -> str | None:
    if figures.get("reachable") is False:
        return str(figures.get("error") or "unknown reason")
    return None


def _not_computed(figures: Mapping[str, Any]) -> str | None:
    if figures.get("computed") is not False:
        return None
    reasons = [p["reason"] for p in _problems(figures) if p["kind"] == "failed"]
    return reasons[0] if reasons else "no figure could be computed"


def _no_data(figures: Mapping[str, Any]) -> str | None:
    if figures.get("has_data") is False:
        return f"no observation of {figures.get('month') or 'the month'} in the metrics store"
    if figures.get("computed") is True and figures.get("observations") == 0:
        return "no observation of the incident window in the metrics store"
    return None


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("store", "the metrics store cannot be read", _store_down, ("Metrics store",)),
        Rule("database", "the database cannot be reached", _database_down),
        Rule("computed", "the report could not be computed", _not_computed),
        Rule("data", "nothing to report", _no_data, ("Data",), after_failure=False),
    )
}


def judge(rules: Sequence[str], figures: Mapping[str, Any] | None) -> Outcome:
    """Apply the named `rules` (a kind's `fails_when`) to a notebook's key figures."""
    outcome = Outcome()
    if figures is None:
        outcome.warnings.append(NO_KEY_FIGURES)
        return outcome
    explained_sections: set[str] = set()
    details: list[str] = []
    for name in rules:
        rule = RULES[name]
        if outcome.failures and not rule.after_failure:
            continue
        detail = rule.check(figures)
        if detail is None:
            continue
        outcome.failures.append(f"{rule.text}: {detail}")
        explained_sections.update(rule.sections)
        details.append(detail)
    seen: set[str] = set()
    for problem in _problems(figures):
        if problem["section"] in explained_sections:
            continue
        if any(d and d in problem["reason"] for d in details):
            continue
        text = (
            f"{problem['section']}: {problem['reason']}"
            if problem["section"]
            else problem["reason"]
        )
        if text not in seen:
            seen.add(text)
            outcome.warnings.append(text)
    return outcome
