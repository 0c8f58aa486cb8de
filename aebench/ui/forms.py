"""Widgets generated from a plug-in's pydantic ``Params``: one field, one widget.

int / float fields get numeric boxes with the field's bounds, bool a checkbox, Literal a
drop-down, everything else (lists, optional values) a text box read as TOML/JSON. The
field's description is the tooltip. Invalid values are shown inline with pydantic's
message and make ``form.valid`` False.
"""

from __future__ import annotations

import json
from typing import Any, Literal, get_args, get_origin

import annotated_types
import ipywidgets as W
from pydantic import BaseModel, ValidationError


def _bounds(field) -> dict[str, float]:
    out = {}
    for m in field.metadata:
        if isinstance(m, annotated_types.Ge):
            out["min"] = m.ge
        elif isinstance(m, annotated_types.Gt):
            out["min"] = m.gt
        elif isinstance(m, annotated_types.Le):
            out["max"] = m.le
        elif isinstance(m, annotated_types.Lt):
            out["max"] = m.lt
    return out


def _literal(annotation) -> list | None:
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return None


def _plain(annotation) -> type | None:
    return annotation if annotation in (int, float, bool, str) else None


def widget_for(name: str, field, value: Any) -> tuple[W.Widget, str]:
    """(widget, how to read it): ``value`` | ``text`` (parse as JSON / TOML-ish)."""
    tip = field.description or ""
    style = {"description_width": "140px"}
    layout = W.Layout(width="380px")
    choices = _literal(field.annotation)
    plain = _plain(field.annotation)
    if choices is not None:
        return W.Dropdown(
            options=choices, value=value, description=name, tooltip=tip, style=style, layout=layout
        ), "value"
    if plain is bool:
        return W.Checkbox(value=bool(value), description=name, tooltip=tip, indent=False), "value"
    if plain is int:
        return W.IntText(value=value, description=name, tooltip=tip, style=style, layout=layout), "value"
    if plain is float:
        return W.FloatText(value=value, description=name, tooltip=tip, style=style, layout=layout), "value"
    if plain is str:
        return W.Text(value=value, description=name, tooltip=tip, style=style, layout=layout), "value"
    return W.Text(value=to_text(value), description=name, tooltip=tip, style=style, layout=layout), "text"


def to_text(value: Any) -> str:
    return "" if value is None else json.dumps(value)


def from_text(text: str) -> Any:
    text = text.strip()
    if text in ("", "none", "None", "null"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # pydantic reports it if a string is not acceptable


class ParamsForm(W.VBox):
    """A form for one ``Params`` model; ``.values()`` gives what differs from the defaults."""

    def __init__(self, params_cls: type[BaseModel], values: dict[str, Any] | None = None) -> None:
        self.params_cls = params_cls
        self.fields: dict[str, tuple[W.Widget, str]] = {}
        self.error = W.HTML()
        rows = []
        values = values or {}
        for name, field in params_cls.model_fields.items():
            default = field.get_default(call_default_factory=True)
            w, mode = widget_for(name, field, values.get(name, default))
            bounds = _bounds(field)
            if bounds:
                w.tooltip = f"{w.tooltip} [{bounds.get('min', '')} .. {bounds.get('max', '')}]".strip()
            w.observe(lambda _change: self.validate(), names="value")
            self.fields[name] = (w, mode)
            rows.append(w)
        super().__init__([*rows, self.error])
        self.validate()

    def raw(self) -> dict[str, Any]:
        return {n: (from_text(w.value) if mode == "text" else w.value) for n, (w, mode) in self.fields.items()}

    def values(self) -> dict[str, Any]:
        """The non-default values, ready for a spec table."""
        out = {}
        for name, value in self.raw().items():
            field = self.params_cls.model_fields[name]
            if value != field.get_default(call_default_factory=True):
                out[name] = value
        return out

    def set(self, values: dict[str, Any], reset: bool = False) -> None:
        """Set fields; with ``reset`` every field not in ``values`` returns to its default."""
        if reset:
            values = {
                n: f.get_default(call_default_factory=True) for n, f in self.params_cls.model_fields.items()
            } | values
        for name, value in values.items():
            if name not in self.fields:
                raise KeyError(f"{self.params_cls.__qualname__} has no field {name!r}")
            w, mode = self.fields[name]
            w.value = to_text(value) if mode == "text" else value
        self.validate()

    def validate(self) -> bool:
        try:
            self.params_cls.model_validate(self.raw())
        except ValidationError as exc:
            msgs = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            self.error.value = "<span style='color:#b00020'>" + "<br>".join(msgs) + "</span>"
            self.valid = False
            return False
        self.error.value = ""
        self.valid = True
        return True


class ComponentPicker(W.VBox):
    """A drop-down of every installed component of a kind, with the chosen one's form."""

    def __init__(self, kind: str, registry, value: dict[str, Any] | None = None, label: str | None = None) -> None:
        self.kind, self.registry = kind, registry
        names = registry.names(kind)
        value = dict(value or {"name": names[0]})
        self.dropdown = W.Dropdown(
            options=names, value=value.pop("name"), description=label or kind, style={"description_width": "140px"}
        )
        self.summary = W.HTML()
        self.form_box = W.VBox()
        self.dropdown.observe(lambda _c: self._rebuild({}), names="value")
        super().__init__([self.dropdown, self.summary, self.form_box])
        self._rebuild(value)

    def _rebuild(self, values: dict[str, Any]) -> None:
        cls = self.registry.get(self.kind, self.dropdown.value)
        self.summary.value = f"<i>{cls.summary}</i>"
        self.form = ParamsForm(cls.Params, values)
        self.form_box.children = [self.form]

    @property
    def valid(self) -> bool:
        return self.form.validate()

    def table(self) -> dict[str, Any]:
        return {"name": self.dropdown.value, **self.form.values()}

    def set(self, table: dict[str, Any]) -> None:
        table = dict(table)
        name = table.pop("name", self.dropdown.value)
        if name != self.dropdown.value:
            self.dropdown.value = name  # rebuilds with defaults
        self.form.set(table, reset=True)  # a table describes the whole component
