"""Log templates: each log entry's first line is given a pattern with drain3 (Drain, a
fixed-depth parse tree; numbers, ids, addresses and durations masked first).

Pattern ids are lsops's own, kept in the store (`lsops_log_patterns`): a `PatternMiner` is
seeded with the stored templates in id order, so a line of a pattern seen in January gets
the same id in October and a pattern is `new` exactly when no line of it was stored
before. drain3's own state (jsonpickle) is never stored or loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

MESSAGE_LIMIT = 2000  # characters of a first line given to the miner (a 1 MB line is cut)

MASKS = [
    # ids and addresses first (they contain digits the later masks would split)
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "IP"),
    (r"\b0x[0-9a-fA-F]+\b", "HEX"),
    (r"\b[0-9a-fA-F]{16,}\b", "HEX"),
    (r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:ms|s|m|h|MB|KB|GB|MiB|KiB|GiB|%)?(?![\w.])", "NUM"),
]

logging.getLogger("drain3").setLevel(logging.WARNING)


def _config() -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(p, name) for p, name in MASKS]
    config.drain_sim_th = 0.5
    config.drain_depth = 4
    config.drain_max_children = 100
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    return config


def first_line(text: str) -> str:
    line = text.split("\n", 1)[0].strip()
    return line[:MESSAGE_LIMIT] if line else "(empty line)"


class PatternMiner:
    """drain3 with stable, stored pattern ids. `assign(message) -> pattern_id`;
    `changed()` the templates (id -> template) that are new or generalised since seeding."""

    def __init__(self, known: Mapping[int, str] | None = None) -> None:
        self._miner = TemplateMiner(config=_config())
        self._by_cluster: dict[int, int] = {}
        self._templates: dict[int, str] = {}
        self._changed: set[int] = set()
        for pid in sorted(known or {}):
            template = str((known or {})[pid])
            result = self._miner.add_log_message(template)
            cluster = int(result["cluster_id"])
            self._templates[pid] = template
            self._by_cluster.setdefault(cluster, pid)
        self._next = max(self._templates, default=0) + 1

    def assign(self, message: str) -> int:
        """The pattern id of one message (its first line)."""
        result = self._miner.add_log_message(first_line(message))
        cluster = int(result["cluster_id"])
        pid = self._by_cluster.get(cluster)
        if pid is None:
            pid = self._next
            self._next += 1
            self._by_cluster[cluster] = pid
        template = str(result["template_mined"])
        if self._templates.get(pid) != template:
            self._templates[pid] = template
            self._changed.add(pid)
        return pid

    def changed(self) -> dict[int, str]:
        return {pid: self._templates[pid] for pid in sorted(self._changed)}

    def template(self, pid: int) -> str | None:
        return self._templates.get(pid)
