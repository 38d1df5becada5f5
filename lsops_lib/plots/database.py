"""The charts of the database reports (the DB optimization report, the review's database section): each takes the DataFrame the library returns."""

from __future__ import annotations

__all__: list[str] = []
