"""The operator data collections — entities, events, states — validated by a tenant template."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from loadbay.ingest.collection import Collection, ConflictMode, Reference
from loadbay.ingest.fields import RecordInvalid, quoted, text
from loadbay.ingest.ids import PublicIds
from loadbay.ingest.templates.model import CompiledTemplate, compile_template
from loadbay.outcomes import RecordError
from loadbay.storage.bulk import BulkTarget
from loadbay.storage.tables import entities, events, states

# Beyond this many problems in one record, the rest are summarised.
MAX_PROBLEMS = 10

_identifier = text(255)
_type_name = text(64)

ENTITY_REFERENCE = Reference(
    table=entities,
    source="external_id",
    lookup="external_id",
    target="entity_id",
    error_code=RecordError.REFERENCE_NOT_FOUND,
    message="no entity with this externalId exists",
)


@dataclass(frozen=True)
class OperatorCollections:
    entities: Collection
    events: Collection
    states: Collection


def collections_for(template_json: str) -> OperatorCollections:
    """The three collections validating against one template (cached per template)."""
    return _collections(template_json)


@functools.lru_cache(maxsize=256)
def _collections(template_json: str) -> OperatorCollections:
    template = compile_template(template_json)
    return OperatorCollections(
        entities=Collection(
            name="entities",
            target=BulkTarget.for_table(
                entities, ("tenant_id", "external_id"), update_guard=("entity_type",)
            ),
            key=("external_id",),
            validate=_entity_validator(template),
            ids=PublicIds("entity-"),
            on_conflict=ConflictMode.UPDATE,
            conflict_code=RecordError.TYPE_CONFLICT,
            conflict_message="this externalId belongs to an entity of another entityType",
        ),
        events=Collection(
            name="events",
            target=BulkTarget.for_table(events, ("tenant_id", "event_id")),
            key=("event_id",),
            validate=_event_validator(template),
            ids=PublicIds("event-"),
            on_conflict=ConflictMode.IGNORE,
            conflict_code=RecordError.DUPLICATE,
            conflict_message="an event with this eventId exists",
            reference=ENTITY_REFERENCE,
            position_column="position",
        ),
        states=Collection(
            name="states",
            target=BulkTarget.for_table(states, ("tenant_id", "entity_id", "state_key")),
            key=("external_id", "state_key"),
            validate=_state_validator(template),
            ids=PublicIds("state-"),
            on_conflict=ConflictMode.UPDATE,
            conflict_code=RecordError.CONFLICT,
            conflict_message="this state could not be written",
            reference=ENTITY_REFERENCE,
        ),
    )


class _Envelope:
    """The fields a record of one kind must have and may have."""

    def __init__(self, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()):
        self.what = what
        self.required = required
        self._required = frozenset(required)
        self._allowed = frozenset((*required, *optional))

    def fields(self, record: Any) -> Mapping[str, Any]:
        # A decoded JSON body holds dicts: skip the slower ABC check for them.
        if type(record) is not dict and not isinstance(record, Mapping):
            raise RecordInvalid(f"{self.what} must be a JSON object")
        keys = record.keys()
        # Two set comparisons for a good record; the messages only for a bad one.
        if keys >= self._required and keys <= self._allowed:
            return record
        problems = [f"Missing required field: {quoted(f)}" for f in self.required if f not in keys]
        problems += [f"Unknown field: {quoted(f)}" for f in record if f not in self._allowed]
        raise RecordInvalid("; ".join(problems))


_ENTITY = _Envelope("entity", ("entityType", "externalId", "data"))
_EVENT = _Envelope("event", ("externalId", "eventType", "data"), ("eventId",))
_STATE = _Envelope("state", ("externalId", "stateKey", "value"))


def _entity_validator(template: CompiledTemplate) -> Callable[[Any], dict[str, Any]]:
    def validate(record: Any) -> dict[str, Any]:
        fields = _ENTITY.fields(record)
        entity_type = _name(fields, "entityType")
        schema = _known(
            template.entity_types, entity_type, RecordError.UNKNOWN_ENTITY_TYPE, "entity type"
        )
        external_id = _identifier_of(fields, "externalId")
        data = _data(fields, "data", schema)
        return {"external_id": external_id, "entity_type": entity_type, "data": data}

    return validate


def _event_validator(template: CompiledTemplate) -> Callable[[Any], dict[str, Any]]:
    def validate(record: Any) -> dict[str, Any]:
        fields = _EVENT.fields(record)
        event_type = _name(fields, "eventType")
        schema = _known(
            template.event_types, event_type, RecordError.UNKNOWN_EVENT_TYPE, "event type"
        )
        external_id = _identifier_of(fields, "externalId")
        event_id = _identifier_of(fields, "eventId") if "eventId" in fields else str(uuid.uuid4())
        data = _data(fields, "data", schema)
        return {
            "event_id": event_id,
            "external_id": external_id,
            "event_type": event_type,
            "data": data,
        }

    return validate


def _state_validator(template: CompiledTemplate) -> Callable[[Any], dict[str, Any]]:
    def validate(record: Any) -> dict[str, Any]:
        fields = _STATE.fields(record)
        state_key = _name(fields, "stateKey")
        schema = _known(template.state_keys, state_key, RecordError.UNKNOWN_STATE_KEY, "state key")
        external_id = _identifier_of(fields, "externalId")
        _check(schema, fields["value"], "value")
        return {"external_id": external_id, "state_key": state_key, "value": fields["value"]}

    return validate


def _text_field(fields: Mapping[str, Any], name: str, parse: Callable[[Any], str]) -> str:
    try:
        return parse(fields[name])
    except ValueError as error:
        raise RecordInvalid(f"Invalid field {quoted(name)}: {error}") from None


def _identifier_of(fields: Mapping[str, Any], name: str) -> str:
    return _text_field(fields, name, _identifier)


def _name(fields: Mapping[str, Any], name: str) -> str:
    return _text_field(fields, name, _type_name)


def _known(
    validators: Mapping[str, jsonschema_rs.Validator], name: str, code: RecordError, what: str
) -> jsonschema_rs.Validator:
    validator = validators.get(name)
    if validator is None:
        known = ", ".join(sorted(validators)) or "none"
        raise RecordInvalid(f"Unknown {what} {quoted(name)}; the template has: {known}", code)
    return validator


def _data(fields: Mapping[str, Any], name: str, schema: jsonschema_rs.Validator) -> Any:
    data = fields[name]
    if not isinstance(data, dict):
        raise RecordInvalid(f"Invalid field {quoted(name)}: must be a JSON object")
    _check(schema, data, None)
    return data


def _check(schema: jsonschema_rs.Validator, instance: Any, label: str | None) -> None:
    if schema.is_valid(instance):
        return
    problems = list(_describe(schema.iter_errors(instance), label))
    if len(problems) > MAX_PROBLEMS:
        problems = [*problems[:MAX_PROBLEMS], f"and {len(problems) - MAX_PROBLEMS} more problems"]
    raise RecordInvalid("; ".join(problems))


def _describe(errors: Iterable[jsonschema_rs.ValidationError], label: str | None) -> Iterable[str]:
    for error in errors:
        path = [str(p) for p in error.instance_path]
        if error.kind.name == "required":
            field = ".".join([*path, error.kind.as_dict()["property"]])
            yield f"Missing required field: {quoted(field)}"
            continue
        where = ".".join([label, *path] if label else path)
        # Messages quote the offending value, which may be huge: bound them.
        message = error.message if len(error.message) < 300 else error.message[:300] + "…"
        prefix = f"Invalid field {quoted(where)}" if where else "Invalid value"
        yield f"{prefix}: {message}"
