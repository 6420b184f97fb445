"""Grievances (SPEC §5.3): ticket ids, categories and statuses, filing, tracking and escalation."""
