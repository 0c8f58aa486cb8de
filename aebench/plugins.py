"""Plug-in manager and registry.

Built-ins (``aebench.builtin``) and third-party distributions (entry-point group
``aebench``) register through the same hooks. Each hook implementation is called on its
own so that one failing plug-in cannot hide the others: a plug-in that fails to import,
raises, or returns something that is not a proper component is listed as *broken* with
the reason and a warning, and the rest load. Two components with one name in one kind
are a *conflict*: both distributions are named, and using that name raises
:class:`aebench.PluginError`.
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import functools
import importlib
import types
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel

from aebench import hookspecs
from aebench.components import BASES
from aebench.errors import PluginError

BUILTIN_DIST = "aebench"


class AebenchPluginWarning(UserWarning):
    """A plug-in could not be loaded; the message names it and the error."""


@dataclass(frozen=True)
class Entry:
    """One registered component class and where it came from."""

    kind: str
    name: str
    cls: type
    plugin: str  # plug-in (module) name
    dist: str  # distribution that provides it

    @property
    def summary(self) -> str:
        return self.cls.summary

    @property
    def example(self) -> bool:
        """Whether the component marks itself as an example (class attribute ``example = True``)."""
        return getattr(self.cls, "example", False) is True

    def params_schema(self) -> dict[str, Any]:
        return self.cls.Params.model_json_schema()


@dataclass(frozen=True)
class Broken:
    plugin: str
    dist: str
    error: str


@dataclass
class Registry:
    """All installed components by kind (``aebench.registry()``)."""

    entries: dict[str, dict[str, Entry]] = field(default_factory=dict)
    conflicts: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)
    broken: list[Broken] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None

    def kinds(self) -> list[str]:
        return list(hookspecs.KIND_HOOKS)

    def names(self, kind: str) -> list[str]:
        self._check_kind(kind)
        return sorted(self.entries.get(kind, {}))

    def entry(self, kind: str, name: str) -> Entry:
        self._check_kind(kind)
        if (kind, name) in self.conflicts:
            raise PluginError(conflict_message(kind, name, self.conflicts[(kind, name)]))
        try:
            return self.entries[kind][name]
        except KeyError:
            raise PluginError(unknown_message(kind, name, self.names(kind))) from None

    def get(self, kind: str, name: str) -> type:
        """The component class registered as ``name`` in ``kind``."""
        return self.entry(kind, name).cls

    def _check_kind(self, kind: str) -> None:
        if kind not in hookspecs.KIND_HOOKS:
            raise PluginError(unknown_message("kind", kind, self.kinds()))

    def add(self, entry: Entry) -> None:
        key = (entry.kind, entry.name)
        if key in self.conflicts:
            self.conflicts[key].append(entry)
            return
        existing = self.entries.setdefault(entry.kind, {}).get(entry.name)
        if existing is None:
            self.entries[entry.kind][entry.name] = entry
            return
        del self.entries[entry.kind][entry.name]
        self.conflicts[key] = [existing, entry]
        warnings.warn(conflict_message(entry.kind, entry.name, [existing, entry]), AebenchPluginWarning, stacklevel=2)

    def defaults(self, kind: str) -> list[Entry]:
        """The components of ``kind`` marked ``default = True`` (callbacks on in every run), by name."""
        return [e for _, e in sorted(self.entries.get(kind, {}).items()) if getattr(e.cls, "default", False) is True]

    def add_plugin(self, plugin: Any, name: str | None = None) -> None:
        """Register a plug-in of callback hooks on this registry's manager, guarded as the
        installed ones are (historic hooks reach it at once). Component hooks need a rebuilt
        registry: :func:`register_plugin`."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        self.manager.register(_guarded_plugin(self.manager, plugin, name), name=name)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description (``aebench plugins --json``)."""
        return {
            "kinds": {
                kind: [
                    {
                        "name": e.name,
                        "summary": e.summary,
                        "example": e.example,
                        "plugin": e.plugin,
                        "distribution": e.dist,
                        "params": e.params_schema(),
                    }
                    for e in sorted(self.entries.get(kind, {}).values(), key=lambda e: e.name)
                ]
                for kind in self.kinds()
            },
            "conflicts": [
                {"kind": k, "name": n, "distributions": [e.dist for e in es]} for (k, n), es in self.conflicts.items()
            ],
            "broken": [{"plugin": b.plugin, "distribution": b.dist, "error": b.error} for b in self.broken],
        }


def unknown_message(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Installed: {', '.join(known) or '(none)'}."


def conflict_message(kind: str, name: str, entries: list[Entry]) -> str:
    who = " and ".join(f"{e.dist!r} (plug-in {e.plugin!r})" for e in entries)
    return (
        f"two plug-ins register the {kind} {name!r}: {who}. "
        "Uninstall one of the distributions or ask its author to rename the component."
    )


def _check_component(kind: str, cls: Any) -> str | None:
    """Why ``cls`` is not a usable component of ``kind``, or None."""
    base = BASES[kind]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return f"{cls!r} is not a subclass of aebench.components.{base.__name__}"
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        return f"{cls.__name__} has no name"
    if not (isinstance(cls.Params, type) and issubclass(cls.Params, BaseModel)):
        return f"{cls.__name__}.Params is not a pydantic model"
    if not issubclass(cls.Params, base.Params):
        return (
            f"{cls.__name__}.Params must subclass {base.Params.__module__}.{base.Params.__name__} "
            f"(the {kind} base, which declares fields such as {', '.join(base.Params.model_fields) or 'none'})"
        )
    return _check_reports(cls) if kind == "evaluator" else _check_params(cls)


def _check_reports(cls: type) -> str | None:
    """An evaluator's ``reports`` must hold report declarations only: anything else would be
    silently ignored, so the plug-in's results would go unreported without a word."""
    from aebench.hookspecs import REPORT_DECLARATIONS

    reports = getattr(cls, "reports", ())
    items = reports if isinstance(reports, (tuple, list)) else [reports]
    wrong = [item for item in items if not isinstance(item, REPORT_DECLARATIONS)]
    if wrong:
        names = ", ".join(k.__name__ for k in REPORT_DECLARATIONS)
        return f"{cls.__name__}.reports must hold {names} declarations (aebench.hookspecs), not {wrong[0]!r:.200}"
    for item in items:  # checked again as loaded (bounds included), however the declaration was made
        try:
            dataclasses.replace(item)
        except (TypeError, ValueError) as exc:
            return f"{cls.__name__}.reports: {describe_exception(exc)}"
    return _check_params(cls)


def _check_params(cls: type) -> str | None:
    """A Params class whose schema cannot be built or whose defaults break its own bounds is broken."""
    from pydantic import ValidationError

    try:
        cls.Params.model_json_schema()
    except Exception as exc:
        return f"{cls.__name__}.Params has a field with no JSON schema ({type(exc).__name__}: {exc})"
    try:
        defaults = cls.Params()
    except ValidationError as exc:
        if all(e["type"] == "missing" for e in exc.errors()):
            return None  # required fields: a spec must give them
        return f"{cls.__name__}.Params' defaults violate its own bounds: {_first_error(exc)}"
    except Exception as exc:  # a default_factory that raises
        return f"{cls.__name__}.Params() raises {type(exc).__name__}: {exc}"
    try:
        cls.Params.model_validate(defaults.model_dump())
    except ValidationError as exc:
        return f"{cls.__name__}.Params' defaults violate its own bounds: {_first_error(exc)}"
    except Exception as exc:
        return f"{cls.__name__}.Params' defaults cannot be validated ({type(exc).__name__}: {exc})"
    return None


def _first_error(exc) -> str:
    e = exc.errors()[0]
    return f"{'.'.join(map(str, e['loc']))} = {e.get('input')!r}: {e['msg']}"


#: where the guards of the callback hooks put their errors during one :func:`call_hook`
_HOOK_ERRORS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("aebench_hook_errors", default=None)


def call_hook(reg: Registry, name: str, **kwargs: Any) -> list[str]:
    """Call the callback hook ``name`` through pluggy's own caller; return the plug-ins' errors.

    Wrappers (``wrapper=True`` and old-style ``hookwrapper=True``), ``tryfirst``/``trylast``
    and historic hooks (``call_historic``) behave as pluggy documents. Every implementation
    runs under a guard (:func:`_guarded`): a plug-in whose callback raises (even
    ``SystemExit``) is reported — a warning naming the plug-in, and the message returned — and
    never stops the other plug-ins, fails the run or stops the sweep: a logger's bug must not
    cost the results. Ctrl-C still interrupts.
    """
    errors: list[str] = []
    token = _HOOK_ERRORS.set(errors)
    try:
        hook = getattr(reg.manager.hook, name)
        if hook.spec is not None and hook.spec.opts.get("historic"):
            hook.call_historic(kwargs=kwargs)
        else:
            hook(**kwargs)
    finally:
        _HOOK_ERRORS.reset(token)
    return errors


def _hook_error(plugin: str, hook: str, what: str) -> None:
    msg = f"plug-in {plugin!r}: {hook} {what}"
    warnings.warn(msg, AebenchPluginWarning, stacklevel=3)
    errors = _HOOK_ERRORS.get()
    if errors is not None:
        errors.append(msg)


def _guarded(function: Any, plugin: str, hook: str, opts: dict[str, Any]) -> Any:
    """``function`` (a callback hookimpl) made unable to raise into pluggy's caller.

    A plain implementation that raises returns None. A new-style wrapper (``wrapper=True``)
    that raises before its ``yield`` passes the call through; after it, the inner result is
    kept. An old-style one (``hookwrapper=True``) is guarded the same way around its
    ``outcome``. Only ``KeyboardInterrupt`` goes through."""

    def failed(exc: BaseException) -> None:
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        _hook_error(plugin, hook, f"raised {describe_exception(exc)}")

    if opts.get("wrapper"):

        @functools.wraps(function)
        def new_style(*args: Any, **kwargs: Any) -> Any:
            try:
                gen = function(*args, **kwargs)
                next(gen)
            except StopIteration:
                _hook_error(plugin, hook, "is a wrapper that did not yield")
                return (yield)
            except BaseException as exc:
                failed(exc)
                return (yield)
            result = yield
            try:
                gen.send(result)
            except StopIteration as stop:
                return stop.value
            except BaseException as exc:
                failed(exc)
                return result
            gen.close()
            _hook_error(plugin, hook, "is a wrapper that yielded more than once")
            return result

        return new_style

    if opts.get("hookwrapper"):

        @functools.wraps(function)
        def old_style(*args: Any, **kwargs: Any) -> Any:
            try:
                gen = function(*args, **kwargs)
                next(gen)
            except StopIteration:
                _hook_error(plugin, hook, "is a hookwrapper that did not yield")
                yield
                return
            except BaseException as exc:
                failed(exc)
                yield
                return
            outcome = yield
            try:
                gen.send(outcome)
            except StopIteration:
                return
            except BaseException as exc:
                failed(exc)
                return
            gen.close()
            _hook_error(plugin, hook, "is a hookwrapper that yielded more than once")

        return old_style

    @functools.wraps(function)
    def plain(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BaseException as exc:
            failed(exc)
            return None

    return plain


def _guarded_plugin(pm: pluggy.PluginManager, plugin: Any, name: str) -> Any:
    """What is registered for ``plugin``: a namespace whose callback hookimpls are
    :func:`_guarded` (component hooks are called one by one by :func:`build_registry`)."""
    attrs: dict[str, Any] = {"__name__": name, "__aebench_plugin__": plugin}
    for attr in dir(plugin):
        opts = pm.parse_hookimpl_opts(plugin, attr)
        if opts is None:
            continue
        function = getattr(plugin, attr)
        hook = opts.get("specname") or attr
        if hook in hookspecs.KIND_HOOKS.values():
            function = _forward(function)  # its own object: the marker may sit on a staticmethod, not on it
        else:
            function = _guarded(function, name, hook, opts)
        # pluggy finds hookimpls by their marker, read statically: put it on what is registered
        setattr(function, f"{hookspecs.PROJECT}_impl", dict(opts))
        attrs[attr] = function
    return types.SimpleNamespace(**attrs)


def _forward(function: Any) -> Any:
    """A plain function calling ``function`` (which may be a bound method or a staticmethod's
    function, neither of which can carry pluggy's marker), with its signature."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return call


def fire(reg: Registry, run: Any, event: str, hooks: bool = True, **kwargs: Any) -> None:
    """``event`` (``on_epoch_end``, ...) on the run's own callbacks (``run.callbacks``, in
    order), then, with ``hooks``, on the always-on plug-ins' hook ``aebench_<event>`` where one
    is declared. Errors never propagate: each is a warning and a line in ``run.hook_errors``
    naming the callback or plug-in. Ctrl-C still interrupts."""
    errors: list[str] = []
    for cb in getattr(run, "callbacks", ()):
        try:
            getattr(cb, event)(run, **kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            who = safe_text(lambda cb=cb: cb.name, type(cb).__name__)
            msg = f"callback {who!r}: {event} raised {describe_exception(exc)}"
            warnings.warn(msg, AebenchPluginWarning, stacklevel=2)
            errors.append(msg)
    hook = getattr(reg.manager.hook, f"aebench_{event}", None)
    if hooks and hook is not None and hook.spec is not None:
        errors += call_hook(reg, f"aebench_{event}", run=run, **kwargs)
    run.note_hook_errors(errors)


#: the most characters of a plug-in's exception kept in a message (status.json stays small)
MAX_ERROR_TEXT = 1000


def describe_exception(exc: BaseException) -> str:
    """``"Type: text"`` for any exception, even one whose ``__str__`` raises or returns
    something that is not text: then its type name alone, so reporting it cannot fail."""
    kind = safe_text(lambda: type(exc).__name__, "Exception")
    text = safe_text(lambda: str(exc), None)
    if text is None:
        return f"{kind} (its message could not be printed)"
    return f"{kind}: {text}" if text else kind


def safe_text(make: Any, fallback: Any) -> Any:
    """``make()`` as a plain, bounded ``str``, or ``fallback`` when it raises or is not text."""
    try:
        text = make()
        if not isinstance(text, str):
            return fallback
        text = str.__str__(text)  # a str subclass's own methods are the plug-in's code
    except Exception:
        return fallback
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "…"


def _builtin_modules() -> list[ModuleType]:
    from aebench.builtin import MODULES

    return [importlib.import_module(m) for m in MODULES]


def build_registry(extra_plugins: list[Any] | None = None, entry_point_group: str = hookspecs.PROJECT) -> Registry:
    """Build a fresh registry: built-ins, installed entry points, then ``extra_plugins``."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    reg = Registry(manager=pm)
    dists: dict[str, str] = {}

    def register(module: ModuleType, name: str, dist: str) -> None:
        try:
            pm.register(_guarded_plugin(pm, module, name), name=name)
        except Exception as exc:  # pluggy validation: bad hookimpl signatures etc.
            _broken(reg, name, dist, exc)
            return
        dists[name] = dist

    for module in _builtin_modules():
        register(module, module.__name__, BUILTIN_DIST)
    for ep in entry_points(group=entry_point_group):
        dist = ep.dist.name if ep.dist is not None else "?"
        try:
            module = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # any import-time failure (even sys.exit) isolates this plug-in only
            _broken(reg, ep.name, dist, exc)
            continue
        register(module, ep.name, dist)
    for module in extra_plugins or []:
        name = getattr(module, "__name__", None) or type(module).__name__
        register(module, name, getattr(module, "__distribution__", "(in-process)"))

    for kind, hook_name in hookspecs.KIND_HOOKS.items():
        for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
            dist = dists.get(impl.plugin_name, "?")
            try:
                classes = list(impl.function() or [])
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                _broken(reg, impl.plugin_name, dist, exc)
                continue
            for cls in classes:
                problem = _check_component(kind, cls)
                if problem:
                    _broken(reg, impl.plugin_name, dist, problem)
                    continue
                reg.add(Entry(kind, cls.name, cls, impl.plugin_name, dist))
    call_hook(reg, "aebench_registry_ready", registry=reg)
    return reg


def _broken(reg: Registry, plugin: str, dist: str, error: Exception | str) -> None:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    reg.broken.append(Broken(plugin, dist, text))
    warnings.warn(
        f"aebench plug-in {plugin!r} from {dist!r} is broken and was skipped: {text}",
        AebenchPluginWarning,
        stacklevel=3,
    )


_REGISTRY: Registry | None = None
_EXTRA: list[Any] = []


def registry(refresh: bool = False) -> Registry:
    """The process-wide registry (built on first use; ``refresh=True`` rebuilds it)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = build_registry(extra_plugins=_EXTRA)
    return _REGISTRY


def register_plugin(module: Any) -> Registry:
    """Register an in-process plug-in (a module, or any object whose attributes are hookimpls,
    e.g. a class defined in a notebook) and rebuild the registry.

    Worker processes of the ``process``/``dask`` executors only see installed
    (entry-point) plug-ins and those registered again in the worker.
    """
    if module not in _EXTRA:
        _EXTRA.append(module)
    return registry(refresh=True)
