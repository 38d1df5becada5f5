"""lsops: the operations toolkit of the LongSang Admin AI Copilot API."""

__version__ = "0.1.0"
