"""A config the operator must fix: each problem names the file, the field, the value and the rule.

`ConfigError` is one line (`config.toml: risk.daily_loss_limit: 1.5 is not a fraction between
0 and 1`) for stderr and a dialog; its `file`, `field`, `value` and `rule` attributes (those of
the first problem) and `problems` let the console lay the message out itself.
"""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass
from typing import Any, NoReturn

from pydantic import BaseModel
from pydantic_core import PydanticCustomError

from engine.core.config_types import FINITE_RULE


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    field: str  # dotted path, e.g. "venues.binance.timeout_s"; "" for the file as a whole
    value: str  # as written, shown with repr for strings; "" when there is none to show
    rule: str

    def __str__(self) -> str:
        text = f"{self.value} {self.rule}" if self.value else self.rule
        return f"{self.field}: {text}" if self.field else text


class ConfigError(ValueError):
    """str() is the whole human message, on one line."""

    def __init__(self, file: str, problems: list[ConfigProblem] | list[str]) -> None:
        self.problems = [p if isinstance(p, ConfigProblem) else ConfigProblem("", "", p) for p in problems]
        first = self.problems[0] if self.problems else ConfigProblem("", "", "invalid")
        self.file, self.field, self.value, self.rule = file, first.field, first.value, first.rule
        self.source = file  # the name older callers use
        text = "; ".join(str(p) for p in self.problems)
        super().__init__(" ".join(f"{file}: {text}".split()))  # one line, whatever the parser said


def refuse(problems: list[ConfigProblem]) -> NoReturn:
    """From a model validator: problems whose fields are relative to the model that raises."""
    raise PydanticCustomError("contradictions", "{text}", {"text": "; ".join(map(str, problems)), "problems": problems})


def show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    return repr(value) if isinstance(value, str) else str(value)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The model classes an annotation can hold (through Optional, list, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def _section_at(root: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in path:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        models = _models_in(field.annotation) if field is not None else []
        model = models[0] if models else None
    return model


def _allowed_values(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    names = [p for p in loc if not isinstance(p, int)]
    section = _section_at(root, tuple(names[:-1]))
    field = section.model_fields.get(str(names[-1])) if section is not None and names else None
    if field is None:
        return []
    args = [field.annotation]
    while args:
        ann = args.pop()
        if isinstance(ann, type) and issubclass(ann, enum.Enum):
            return [str(m.value) for m in ann]
        if typing.get_origin(ann) is typing.Literal:
            return [str(a) for a in typing.get_args(ann)]
        if typing.get_origin(ann) in (typing.Union, types.UnionType, typing.Annotated, list):
            args += list(typing.get_args(ann))
    return []


def describe(root: type[BaseModel], err: dict[str, Any], prefix: str = "") -> list[ConfigProblem]:
    """One pydantic error as the operator should read it."""
    loc = tuple(err["loc"])
    field = prefix + ".".join(str(p) for p in loc)
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "contradictions":  # the cross-field rules report several problems at once
        return [ConfigProblem(f"{field}.{p.field}" if field else p.field, p.value, p.rule) for p in ctx["problems"]]
    msg = str(err["msg"]).removeprefix("Value error, ")
    value = show(err.get("input"))
    if kind == "extra_forbidden":
        section = _section_at(root, loc[:-1])
        known = ", ".join(section.model_fields) if section is not None else ""
        return [ConfigProblem(field, "", f"unknown setting (check the spelling; known: {known})")]
    if kind == "missing":
        allowed = _allowed_values(root, loc)
        return [ConfigProblem(field, "", "required" + (f" (one of: {', '.join(allowed)})" if allowed else ""))]
    if kind == "finite_number":
        return [ConfigProblem(field, value, FINITE_RULE)]
    if kind in ("enum", "literal_error"):
        allowed = _allowed_values(root, loc) or [str(ctx.get("expected", ""))]
        rule = f"is not one of: {', '.join(allowed)} (written exactly so, lower case)"
        return [ConfigProblem(field, value, rule)]
    if kind == "value_error":
        return [ConfigProblem(field, value, msg)]
    return [ConfigProblem(field, value, f"is invalid ({msg[0].lower() + msg[1:] if msg else kind})")]
