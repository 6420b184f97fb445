"""Abuse protection: per-sender, per-CNIC, per-IP and per-partner rate limits (SPEC §4)."""

from api.ratelimit.service import Decision, RateLimiter

__all__ = ["Decision", "RateLimiter"]
