"""The console's vocabulary: roles, audit actions and record types."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """What a member of staff may do; each role may do everything the ones before it may."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        """True when this role includes `other` (an admin is also a supervisor and an agent)."""
        return self.rank >= other.rank


_RANKS = {Role.AGENT: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}


class AuditAction(enum.StrEnum):
    """What an audit entry records (every look-up, view and change an agent makes)."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    LOOKUP = "lookup"  # a CNIC search: the coarse status only
    SEND_CODE = "send_code"
    VERIFY = "verify"
    VERIFY_FAILED = "verify_failed"
    VIEW = "view"  # a record's details were shown
    OVERRIDE = "override"  # a supervisor opened a record without the caller's code
    OVERRIDE_REQUEST = "override_request"
    OVERRIDE_APPROVE = "override_approve"
    OVERRIDE_DENY = "override_deny"
    FILE_GRIEVANCE = "file_grievance"
    ADD_NOTE = "add_note"
    CHANGE_STATUS = "change_status"
    ASSIGN = "assign"
    ESCALATE_OVERDUE = "escalate_overdue"
    EXPORT = "export"
    #: An operator took the person out of the registry (`rabta registry remove`).
    REGISTRY_REMOVE = "registry_remove"


class RecordType(enum.StrEnum):
    PERSON = "person"  # record_id: the 13 CNIC digits (shown masked)
    GRIEVANCE = "grievance"  # record_id: the ticket id
    AGENT = "agent"  # record_id: the username
    AUDIT_LOG = "audit_log"
    DASHBOARD = "dashboard"
