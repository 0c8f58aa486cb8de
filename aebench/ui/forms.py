"""Widgets generated from pydantic fields (a plug-in's ``Params``, the spec's top level).

One field, one widget: a drop-down for a ``Literal`` (with a "list…" entry when the field
also takes a list, e.g. ``activation`` per layer), a checkbox for ``bool``, a text box
parsed strictly for numbers (so "12.5" in a whole-number field is an error, not 125), a
text box for ``str``, and a text box read as JSON for everything else (lists, tables).
The field's description and bounds are shown beside it (``FieldInput.row``) and are its
tooltip. Invalid values are shown inline with the field's name and make ``form.valid`` False.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import annotated_types
import ipywidgets as W
from pydantic import BaseModel, ValidationError

from aebench.errors import SpecError

STYLE = {"description_width": "140px"}
WIDTH = "380px"
#: the drop-down entry that switches a choice field to a per-layer list
AS_LIST = "list…"
RED = "#b00020"


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


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (``X | Y``, ``Optional[X]``), or ``[annotation]``."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return list(get_args(annotation))
    return [annotation]


def _choices(annotation: Any) -> tuple[list[Any] | None, bool]:
    """(the Literal's values, whether a list is also accepted) for ``Literal[...]`` or
    ``Literal[...] | list[Literal[...]]``; (None, False) otherwise."""
    alts = _members(annotation)
    lits = [a for a in alts if get_origin(a) is Literal]
    if len(lits) != 1:
        return None, False
    rest = [a for a in alts if a is not lits[0]]
    if all(get_origin(a) is list for a in rest):
        return list(get_args(lits[0])), bool(rest)
    return None, False


def _scalar(annotation: Any) -> tuple[type | None, bool]:
    """(int | float | bool | str, whether None is allowed) for plain and optional scalars."""
    alts = [a for a in _members(annotation) if a is not type(None)]
    optional = len(alts) < len(_members(annotation))
    if len(alts) == 1 and alts[0] in (int, float, bool, str):
        return alts[0], optional
    return None, False


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


class BadInput(str):
    """Text a field could not read (a malformed number): validation names the field."""


class FieldInput:
    """One field's widget: ``widget`` (the input), ``row`` (the input with its description
    beside it: what a form shows), ``get()``, ``set(value)``, ``observe(fn)``."""

    widget: W.Widget
    row: W.Widget

    def observe(self, fn: Callable[[], None]) -> None:
        self.widget.observe(lambda _c: fn(), names="value")

    def get(self) -> Any:
        return self.widget.value

    def set(self, value: Any) -> None:
        self.widget.value = value


class CheckInput(FieldInput):
    def __init__(self, name: str, value: Any, tip: str) -> None:
        self.widget = W.Checkbox(value=bool(value), description=name, tooltip=tip, indent=False)

    def set(self, value: Any) -> None:
        self.widget.value = bool(value)


class TextInput(FieldInput):
    def __init__(self, name: str, value: Any, tip: str) -> None:
        self.widget = W.Text(value=self._show(value), description=name, tooltip=tip, style=STYLE)
        self.widget.layout = W.Layout(width=WIDTH)

    def _show(self, value: Any) -> str:
        return "" if value is None else str(value)

    def set(self, value: Any) -> None:
        self.widget.value = self._show(value)


class NumberInput(TextInput):
    """A text box read strictly as a whole number or a float; malformed text is an error
    shown on the form (a browser-side number box would silently drop the dot of "12.5")."""

    INT = re.compile(r"[+-]?\d+")

    def __init__(self, name: str, value: Any, tip: str, kind: type, optional: bool) -> None:
        self.kind, self.optional = kind, optional
        super().__init__(name, value, tip)
        self.widget.placeholder = "(none)" if optional else ("a whole number" if kind is int else "a number")

    def _show(self, value: Any) -> str:
        if value is None:
            return ""
        return repr(value) if isinstance(value, float) else str(value)

    def get(self) -> Any:
        text = self.widget.value.strip()
        if text == "" and self.optional:
            return None
        if self.INT.fullmatch(text):  # also in a float field: `level = 1` stays 1, as the spec wrote it
            return int(text)
        if self.kind is int:
            return BadInput(f"{text!r} is not a whole number")
        try:
            number = float(text)
        except ValueError:
            return BadInput(f"{text!r} is not a number")
        return number if math.isfinite(number) else BadInput(f"{text!r}: numbers must be finite")


class JsonInput(TextInput):
    """Lists, tables, optional values: JSON text (``[500, 500]``)."""

    def _show(self, value: Any) -> str:
        return to_text(value)

    def get(self) -> Any:
        return from_text(self.widget.value)


class ChoiceInput(FieldInput):
    """A drop-down of a Literal's values; with ``allow_list`` an extra "list…" entry shows a
    text box for a per-layer list (``activation = ["relu", "sigmoid"]``)."""

    def __init__(self, name: str, value: Any, tip: str, choices: list[Any], allow_list: bool) -> None:
        self.choices = choices
        options = [*choices, AS_LIST] if allow_list else list(choices)
        self.dropdown = W.Dropdown(options=options, description=name, tooltip=tip, style=STYLE)
        self.dropdown.layout = W.Layout(width=WIDTH)
        self.text = W.Text(placeholder='["sigmoid", "relu"]', layout=W.Layout(width="240px", display="none"))
        self.dropdown.observe(self._toggle, names="value")
        self.widget = W.HBox([self.dropdown, self.text])
        self.set(value)

    def _toggle(self, _change: Any = None) -> None:
        self.text.layout.display = None if self.dropdown.value == AS_LIST else "none"

    def observe(self, fn: Callable[[], None]) -> None:
        self.dropdown.observe(lambda _c: fn(), names="value")
        self.text.observe(lambda _c: fn(), names="value")

    def get(self) -> Any:
        return from_text(self.text.value) if self.dropdown.value == AS_LIST else self.dropdown.value

    def set(self, value: Any) -> None:
        if value in self.choices:
            self.dropdown.value = value
        elif AS_LIST in self.dropdown.options:
            self.text.value = to_text(value)
            self.dropdown.value = AS_LIST
        self._toggle()


def input_for(name: str, field, value: Any) -> FieldInput:
    """The widget for one pydantic field, filled with ``value``."""
    tip = help_text(field)
    inp = _input(name, field, value, tip)
    inp.row = W.HBox([inp.widget, W.HTML(f"<span class='aebench-help'>{_escape(tip)}</span>")])
    inp.row.add_class("aebench-field")
    return inp


def help_text(field) -> str:
    """A field's description with its bounds: what the page shows beside it."""
    tip = field.description or ""
    bounds = _bounds(field)
    if bounds:
        tip = f"{tip} [{bounds.get('min', '')} .. {bounds.get('max', '')}]".strip()
    return tip


def _input(name: str, field, value: Any, tip: str) -> FieldInput:
    choices, allow_list = _choices(field.annotation)
    if choices is not None:
        return ChoiceInput(name, value, tip, choices, allow_list)
    kind, optional = _scalar(field.annotation)
    if kind is bool and not optional:
        return CheckInput(name, value, tip)
    if kind in (int, float):
        return NumberInput(name, value, tip, kind, optional)
    if kind is str and not optional:
        return TextInput(name, value, tip)
    return JsonInput(name, value, tip)


def field_default(field) -> Any:
    return field.get_default(call_default_factory=True)


def unknown_key(where: str, key: str, allowed: list[str]) -> SpecError:
    """The CLI's message for a key no field has: the field named, close matches suggested."""
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SpecError(f"{where}.{key}: unknown key{hint}; allowed: {', '.join(allowed) or '(none)'}")


class ParamsForm(W.VBox):
    """A form for one ``Params`` model.

    ``values()`` gives the keys the loaded table named plus those changed from their
    defaults, so a spec read into the form and written out again keeps its own spelling.
    """

    def __init__(
        self,
        params_cls: type[BaseModel],
        values: dict[str, Any] | None = None,
        where: str = "",
        fixed: dict[str, Any] | None = None,
    ) -> None:
        self.params_cls, self.where = params_cls, where or params_cls.__name__
        self.fixed = dict(fixed or {})  # fields set by the picker (a Params that names its own rule)
        self.fields: dict[str, FieldInput] = {}
        self.explicit: set[str] = set(values or {})
        self.error = W.HTML()
        self.valid = True
        values = values or {}
        for name, field in params_cls.model_fields.items():
            if name in self.fixed:
                continue
            inp = input_for(name, field, values.get(name, field_default(field)))
            inp.observe(self.validate)
            self.fields[name] = inp
        super().__init__([*(f.row for f in self.fields.values()), self.error])
        self.validate()

    def raw(self) -> dict[str, Any]:
        return {**self.fixed, **{n: f.get() for n, f in self.fields.items()}}

    def values(self) -> dict[str, Any]:
        """The named and the non-default values, ready for a spec table."""
        out = {}
        for name, value in self.raw().items():
            if name in self.fixed:
                continue
            if name in self.explicit or not _same(value, field_default(self.params_cls.model_fields[name])):
                out[name] = value
        return out

    def set(self, values: dict[str, Any], reset: bool = False) -> None:
        """Set fields; with ``reset`` every field not in ``values`` returns to its default."""
        unknown = [n for n in values if n not in self.fields]
        if unknown:
            raise unknown_key(self.where, unknown[0], sorted(self.fields))
        given = set(values)
        if reset:
            self.explicit = set()
            defaults = {n: field_default(f) for n, f in self.params_cls.model_fields.items() if n in self.fields}
            values = defaults | values
        self.explicit |= given
        for name, value in values.items():
            self.fields[name].set(value)
        self.validate()

    def problems(self) -> list[str]:
        """Each invalid field as ``where.field: why`` (empty when the form is valid)."""
        raw = self.raw()
        bad = {n: str(v) for n, v in raw.items() if isinstance(v, BadInput)}
        out = [f"{self.where}.{n}: {why}" for n, why in bad.items()]
        try:
            self.params_cls.model_validate({n: v for n, v in raw.items() if n not in bad})
        except ValidationError as exc:
            for e in exc.errors():
                loc = ".".join(map(str, e["loc"]))
                if loc.split(".")[0] not in bad:
                    out.append(f"{self.where}.{loc} = {e.get('input')!r}: {e['msg'].removeprefix('Value error, ')}")
        return out

    def validate(self) -> bool:
        problems = self.problems()
        self.error.value = (
            f"<span style='color:{RED}'>" + "<br>".join(map(_escape, problems)) + "</span>" if problems else ""
        )
        self.valid = not problems
        return self.valid


def _same(a: Any, b: Any) -> bool:
    """Equal as a spec writes them (a default tuple is the list a text box reads back)."""
    try:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    except (TypeError, ValueError):
        return a == b


def _escape(text: str) -> str:
    import html

    return html.escape(text)


class ComponentPicker(W.VBox):
    """A drop-down of the components a spec key can name (``aebench.spec.Slot``: the
    registry's names of its kind; examples hidden unless asked, or already chosen), with the
    chosen one's summary and form."""

    def __init__(
        self,
        slot,
        registry,
        value: dict[str, Any] | None = None,
        label: str | None = None,
        where: str = "",
        examples: bool = False,
    ) -> None:
        self.slot, self.kind, self.registry = slot, slot.kind, registry
        self.where, self.examples = where or slot.key, examples
        value = dict(value or {"name": self.names()[0]})
        self.dropdown = W.Dropdown(options=self.names(value.get("name")), description=label or slot.key, style=STYLE)
        self.dropdown.value = value.pop("name")
        self.summary = W.HTML()
        self.form_box = W.VBox()
        self.dropdown.observe(lambda _c: self._rebuild({}), names="value")
        super().__init__([self.dropdown, self.summary, self.form_box])
        self._rebuild(value)

    def names(self, keep: str | None = None) -> list[str]:
        """The picker's choices: every component of the kind, examples only when asked
        (``examples=True``) or when ``keep`` names one."""
        return [n for n in self.slot.models if self.examples or n == keep or n not in self.slot.examples]

    def _rebuild(self, values: dict[str, Any]) -> None:
        name = self.dropdown.value
        params = self.slot.models[name]
        self.summary.value = f"<i>{_escape(self.slot.summaries.get(name, ''))}</i>"
        fixed = {"name": name} if "name" in params.model_fields else None  # a Params that names its rule
        self.form = ParamsForm(params, values, where=self.where, fixed=fixed)
        self.form_box.children = [self.form]

    @property
    def valid(self) -> bool:
        return self.form.validate()

    def problems(self) -> list[str]:
        return self.form.problems()

    def table(self) -> dict[str, Any]:
        return {"name": self.dropdown.value, **self.form.values()}

    def set(self, table: dict[str, Any]) -> None:
        table = dict(table)
        name = table.pop("name", self.dropdown.value)
        if name not in self.slot.models:
            if self.kind in self.registry.kinds():
                self.registry.entry(self.kind, name)  # an unknown name: PluginError with close matches
            close = difflib.get_close_matches(str(name), list(self.slot.models), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(
                f"{self.where}.name = {name!r}: unknown {self.kind}{hint}; one of {', '.join(self.slot.models)}"
            )
        if name not in self.dropdown.options:
            self.dropdown.options = self.names(name)
        if name != self.dropdown.value:
            self.dropdown.value = name  # rebuilds with defaults
        self.form.set(table, reset=True)  # a table describes the whole component
