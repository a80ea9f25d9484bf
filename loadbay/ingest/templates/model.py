"""Template documents: checked on the way in, compiled once, used for every record."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any

import jsonschema_rs
import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from loadbay.errors import InvalidInput

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
BUILT_IN = ("igaming",)


class TypeDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: dict[str, Any] = Field(
        default_factory=dict, alias="schema", description="JSON Schema (2020-12) of the data."
    )


class TemplateDocument(BaseModel):
    """A tenant's template: JSON Schemas for entity data, event data and state values."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    templateId: Name = "custom"
    entityTypes: dict[Name, TypeDefinition] = Field(min_length=1)
    eventTypes: dict[Name, TypeDefinition] = Field(default_factory=dict)
    stateKeys: dict[Name, TypeDefinition] = Field(default_factory=dict)


@dataclass(frozen=True)
class CompiledTemplate:
    template_id: str
    entity_types: dict[str, jsonschema_rs.Validator]
    event_types: dict[str, jsonschema_rs.Validator]
    state_keys: dict[str, jsonschema_rs.Validator]


def built_in(template_id: str) -> dict[str, Any]:
    if template_id not in BUILT_IN:
        raise InvalidInput(
            f"unknown templateId {template_id!r}; built-in templates: {list(BUILT_IN)}",
            code="invalid_template",
        )
    text = resources.files("loadbay.ingest.templates").joinpath(f"{template_id}.json").read_text()
    document: dict[str, Any] = orjson.loads(text)
    return document


def checked(document: Any) -> dict[str, Any]:
    """The document in canonical form if it is a usable template, else InvalidInput."""
    try:
        parsed = TemplateDocument.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'template'}: {e['msg']}"
            for e in error.errors()
        )
        raise InvalidInput(f"invalid template: {problems}", code="invalid_template") from None
    canonical = parsed.model_dump(by_alias=True)
    compile_template(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS).decode())
    return canonical


@functools.lru_cache(maxsize=256)
def compile_template(document_json: str) -> CompiledTemplate:
    """Compile every schema of a template once; cached by the template's canonical JSON."""
    document = orjson.loads(document_json)

    def compile_all(section: str) -> dict[str, jsonschema_rs.Validator]:
        compiled = {}
        for name, definition in document[section].items():
            try:
                compiled[name] = jsonschema_rs.validator_for(
                    definition["schema"], validate_formats=True
                )
            except (jsonschema_rs.ValidationError, ValueError) as error:
                first_line = str(error).splitlines()[0]
                raise InvalidInput(
                    f"invalid template: {section}.{name}.schema is not a valid JSON Schema: "
                    f"{first_line}",
                    code="invalid_template",
                ) from None
        return compiled

    return CompiledTemplate(
        template_id=document["templateId"],
        entity_types=compile_all("entityTypes"),
        event_types=compile_all("eventTypes"),
        state_keys=compile_all("stateKeys"),
    )


def compiled(document: dict[str, Any]) -> CompiledTemplate:
    return compile_template(orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode())
