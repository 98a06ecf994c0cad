"""The base every configuration model shares: camelCase keys (as in Argo Rollouts), unknown keys refused."""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ConfigModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
    )


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lower-case letters, digits and '-', at most 63 characters"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]


class KeyProblem(ValueError):
    """A cross-field rule broken by one key: raised from a model validator, it carries that key's location
    (relative to the model) so the error points at the key at fault rather than at the model's first line."""

    def __init__(self, message: str, *location: str | int) -> None:
        super().__init__(message)
        self.location: tuple[str | int, ...] = location


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's annotation holds, through lists, mappings, unions and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(m for m in models_in(arg) if m not in found)
    return found


def keys_at(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The keys (as written in files) a mapping at `location` of a `model` document may hold. A location part
    that is no key (a list index, a mapping's own name, a union tag) keeps the models reached so far."""
    models = [model]
    for part in location:
        fields = [f for m in models for n, f in m.model_fields.items() if part in (n, f.alias)]
        if fields:
            models = [sub for f in fields for sub in models_in(f.annotation)]
    return sorted({field.alias or name for m in models for name, field in m.model_fields.items()})
