"""The activities collection: mentoring activities, unique per mentor, type and date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from loadbay.ingest.collection import Collection, ConflictMode
from loadbay.ingest.fields import Field, iso_date, positive_int, record_validator, text
from loadbay.ingest.ids import PublicIds
from loadbay.outcomes import RecordError
from loadbay.storage.bulk import BulkTarget
from loadbay.storage.tables import activities

ACTIVITY_KEY = ("mentor_id", "activity_type", "activity_date")


@dataclass(frozen=True, slots=True)
class Activity:
    """A stored activity; `id` is its number (ACTIVITIES.ids formats it)."""

    id: int
    coordinator_id: str
    mentor_id: str
    activity_type: str
    activity_date: date
    duration_minutes: int
    version: int
    created_at: datetime
    updated_at: datetime


ACTIVITIES = Collection(
    name="activities",
    target=BulkTarget.for_table(activities, ("tenant_id", *ACTIVITY_KEY)),
    key=ACTIVITY_KEY,
    validate=record_validator(
        [
            Field("coordinator_id", text()),
            Field("mentor_id", text()),
            Field("activity_type", text()),
            Field("activity_date", iso_date),
            Field("duration_minutes", positive_int()),
        ]
    ),
    ids=PublicIds("pa-"),
    on_conflict=ConflictMode.FAIL,
    records_origin=True,
    conflict_code=RecordError.DUPLICATE,
    conflict_message=(
        "an activity with this mentor_id, activity_type and activity_date already exists"
    ),
)
