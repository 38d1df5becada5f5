"""Domain answers over a metrics Store; the notebooks call these and draw.

Every figure follows DESIGN.md "Metric semantics": interval figures from the store's
reset-aware counter deltas, weighted means, availability with gaps shown as gaps, the
latency SLO as OpenSLO time slices, monitoring endpoints excluded by default.
"""

from __future__ import annotations

from .availability import Availability, availability, availability_from_health, collection_gaps
from .cache_fall import cache_fall_incidents
from .changes import month_over_month, notable_changes
from .checklist import Check, checklist, exit_code
from .incidents import (
    DETECTORS as INCIDENT_DETECTORS,
)
from .incidents import (
    KINDS as INCIDENT_KINDS,
)
from .incidents import (
    IncidentWindow,
    endpoint_incidents,
    health_incidents,
    incident_title,
    incident_window,
    incidents,
    latest_incident_window,
    postmortem_command,
    postmortem_window,
    restart_incidents,
    with_commands,
)
from .memory import MemoryTrend, memory_trend
from .memory_climb import memory_climb_incidents
from .monthly import MonthlyReview, monthly_review
from .postmortem import Postmortem, postmortem, unavailable_postmortem
from .slo import (
    TIMESLICE_LABEL,
    error_budget,
    latency_slices,
    latency_timeslices,
    percentile_sanity,
)
from .traffic import (
    cache_stats,
    cache_summary,
    endpoint_changes,
    endpoint_series,
    endpoint_summary,
    excluded_monitoring,
    request_totals,
    summary_and_excluded,
    traffic_series,
)

__all__ = [
    "INCIDENT_DETECTORS",
    "INCIDENT_KINDS",
    "TIMESLICE_LABEL",
    "Availability",
    "Check",
    "MemoryTrend",
    "MonthlyReview",
    "Postmortem",
    "availability",
    "availability_from_health",
    "cache_stats",
    "cache_summary",
    "checklist",
    "collection_gaps",
    "endpoint_changes",
    "endpoint_incidents",
    "endpoint_series",
    "endpoint_summary",
    "error_budget",
    "excluded_monitoring",
    "exit_code",
    "health_incidents",
    "incidents",
    "latency_slices",
    "latency_timeslices",
    "memory_trend",
    "monthly_review",
    "percentile_sanity",
    "postmortem",
    "postmortem_command",
    "incident_window",
    "IncidentWindow",
    "incident_title",
    "latest_incident_window",
    "postmortem_window",
    "unavailable_postmortem",
    "month_over_month",
    "notable_changes",
    "request_totals",
    "restart_incidents",
    "summary_and_excluded",
    "traffic_series",
    "with_commands",
    "cache_fall_incidents",
    "memory_climb_incidents",
]
