"""ATST encoder (one module for Clip, Frame and C2F) and checkpoint adapters."""

from .encoder import ATSTConfig, ATSTEncoder

__all__ = ["ATSTConfig", "ATSTEncoder"]
