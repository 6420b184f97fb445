"""One-line results ("Redis killed under 120 req/s: 0 5xx, 0 lost") that the fault, fuzz and
security tests print, collected for the terminal summary and docs/security.md."""

from __future__ import annotations

#: Every figure printed in this session, in order.
FIGURES: list[str] = []


def figure(line: str) -> None:
    """Record one result line and print it (visible with `-s`, and in the summary)."""
    FIGURES.append(line)
    print(f"\nFIGURE {line}")
