"""The simulated LongSang API moved to the package `lsops_lib.sim`; this module keeps
`from lsops_lib.simapi import SimulatedAPI, Scenario, ...` working (every public name of
`lsops_lib.sim`)."""

from __future__ import annotations

from . import sim as _sim
from .sim import *  # noqa: F403 - the shim re-exports the package's public names

__all__ = list(_sim.__all__)
