"""Stored record errors carry Loadbay's own name for each meaning (outcomes.RecordError);
each API spells them as its contract does when it answers.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27

Until now a result row held its API's spelling: `validation_error` for the batch-insert
API, `VALIDATION_FAILED` for the operator data API, for one meaning. Instance file jobs
keep no result rows (their error files are written in the contract's spelling), so only
the two batch kinds change.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# (kind, the contract's code, the start of the message that tells one meaning of it apart
# or None, Loadbay's name).
_NAMES = (
    ("batch_insert", "validation_error", None, "invalid"),
    ("batch_insert", "unique_constraint_violation", None, "duplicate"),
    ("operator", "VALIDATION_FAILED", "an event with this eventId exists", "duplicate"),
    ("operator", "VALIDATION_FAILED", "this state could not be written", "conflict"),
    ("operator", "VALIDATION_FAILED", None, "invalid"),
    ("operator", "ENTITY_TYPE_CONFLICT", None, "type_conflict"),
    ("operator", "ENTITY_NOT_FOUND", None, "reference_not_found"),
    ("operator", "UNKNOWN_ENTITY_TYPE", None, "unknown_entity_type"),
    ("operator", "UNKNOWN_EVENT_TYPE", None, "unknown_event_type"),
    ("operator", "UNKNOWN_STATE_KEY", None, "unknown_state_key"),
)


def upgrade() -> None:
    for kind in ("batch_insert", "operator"):
        cases = [
            (f"error = '{code}'" + (f" AND message LIKE '{message}%'" if message else ""), name)
            for k, code, message, name in _NAMES
            if k == kind
        ]
        _rename(kind, cases, {code for k, code, _, _ in _NAMES if k == kind})


def downgrade() -> None:
    for kind in ("batch_insert", "operator"):
        # Each name goes back to the one code it came from for that kind.
        cases = [(f"error = '{name}'", code) for k, code, _, name in _NAMES if k == kind]
        _rename(kind, cases, {name for k, _, _, name in _NAMES if k == kind})


def _rename(kind: str, cases: list[tuple[str, str]], renamed: set[str]) -> None:
    """One pass over the kind's results whose error is in `renamed`, each renamed by the
    first case it meets."""
    whens = " ".join(f"WHEN {condition} THEN '{new}'" for condition, new in cases)
    listed = ", ".join(f"'{error}'" for error in sorted(renamed))
    op.execute(
        f"UPDATE job_results SET error = CASE {whens} ELSE error END "
        f"WHERE error IN ({listed}) AND job_id IN (SELECT id FROM jobs WHERE kind = '{kind}')"
    )
