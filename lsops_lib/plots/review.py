"""The charts of the monthly review: each takes the DataFrame the library returns."""

from __future__ import annotations

__all__: list[str] = []
