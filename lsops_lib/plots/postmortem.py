"""The charts of the incident postmortem: each takes the DataFrame the library returns."""

from __future__ import annotations

__all__: list[str] = []
