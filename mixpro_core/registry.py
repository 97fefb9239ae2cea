"""Named components built from config dicts: one :class:`Registry` per kind and one key check for every builder.

A config is ``dict(type=<registered name>, **options)``. :func:`call_with_options` checks the option names against
the callable's signature *before* calling it, so a misspelt key is reported as such and a ``TypeError`` raised inside
a constructor is never mistaken for one.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Iterable, Mapping, Optional


def accepted_names(fn: Callable) -> Optional[set]:
    """The keyword names ``fn`` takes (a class: its constructor's); None when it takes ``**kwargs``."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                 inspect.Parameter.KEYWORD_ONLY)}


def check_options(fn: Callable, options: Iterable[str], where: str, reserved: Iterable[str] = ()) -> None:
    """ValueError naming ``where`` and the keys of ``options`` that ``fn`` does not take (or that are ``reserved``:
    filled by the caller, not by the config)."""
    names = accepted_names(fn)
    reserved = set(reserved)
    unknown = sorted(k for k in options if k in reserved or (names is not None and k not in names))
    if unknown:
        allowed = "any" if names is None else sorted(names - reserved)
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {allowed}")


def call_with_options(fn: Callable, options: Mapping[str, Any], where: str, defaults: Mapping[str, Any] = (),
                      reserved: Iterable[str] = ()) -> Any:
    """``fn(**defaults it takes, **options)`` after :func:`check_options`. ``defaults`` are context values (e.g. the
    model's patch size) given only to callables that take them; ``options`` override them."""
    options = dict(options)
    check_options(fn, options, where, reserved)
    names = accepted_names(fn)
    kwargs = {k: v for k, v in dict(defaults).items() if names is None or k in names}
    kwargs.update(options)
    return fn(**kwargs)


class Registry:
    """name → callable, filled by the :meth:`register` decorator; :meth:`build` makes one from a config dict."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Callable] = {}

    def register(self, name: str):
        """Decorator registering a function or class under ``name`` (a name is registered once)."""
        def wrap(obj: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered ({self._entries[name]!r})")
            self._entries[name] = obj
            return obj
        return wrap

    def get(self, name: str) -> Callable:
        if name not in self._entries:
            raise ValueError(f"{self.kind} type must be one of {sorted(self._entries)}, got {name!r}")
        return self._entries[name]

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def split(self, cfg: Mapping[str, Any]):
        """``dict(type=name, **options)`` → (name, the registered callable, options)."""
        if not isinstance(cfg, Mapping):
            raise ValueError(f"a {self.kind} config must be a dict with a 'type' key, got {cfg!r}")
        options = dict(cfg)
        name = options.pop("type", None)
        return name, self.get(name), options

    def build(self, cfg: Mapping[str, Any], defaults: Mapping[str, Any] = (), reserved: Iterable[str] = ()) -> Any:
        """Call the registered callable with the config's options (checked first) and the ``defaults`` it takes."""
        name, fn, options = self.split(cfg)
        return call_with_options(fn, options, f"{self.kind} ({name})", defaults, reserved)


MIXERS = Registry("mixer")
"""Image mixers (:mod:`mixpro_core.schedule` builds and calls them)."""
LABEL_POLICIES = Registry("label_policy")
"""Label policies (:mod:`mixpro_core.labels`)."""
ATTENTION_FORWARDS = Registry("attention_forward")
"""``fn(model, images) -> (logits, cls_attn or None)`` per model class, keyed by
:func:`mixpro_core.attention.attention_key` (:func:`~mixpro_core.attention.forward_with_attention` looks them up)."""
TOKEN_MIXERS = Registry("token_mixup")
"""TokenMixup's token-level methods, 'htm' and 'vtm' (:mod:`mixpro_core.tokenmixup` builds them)."""
METHODS = Registry("method")
"""Training methods, ``dict(type=name, **options)`` → a :class:`mixpro_core.method.Method` (:mod:`mixpro_core.method`
builds them)."""
