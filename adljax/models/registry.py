"""A name -> model factory registry, so the command line and checkpoints can rebuild models.

Synopsis::

    model = create_model("mlp", hidden_sizes=(128,), num_outputs=10)
    config = model_config(model)            # JSON-serialisable dict of attributes
    same = create_model("mlp", **json.loads(json.dumps(config)))

A model family registers itself where it is defined, with a decorator::

    @register_model("mlp")
    class MLP(nn.Module): ...

or, for a named variant, by registering a factory: ``register_model("resnet18",
description="...")(functools.partial(ResNet, stage_sizes=(2, 2, 2, 2)))``.
"""

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import flax.linen as nn

_Factory = TypeVar("_Factory", bound=Callable[..., nn.Module])

# Attributes every Linen module has that describe its place in a tree, not its configuration.
_MODULE_PLUMBING = frozenset({"parent", "name"})

_REGISTRY: dict[str, tuple[Callable[..., nn.Module], str]] = {}


def register_model(name: str, *, description: str | None = None) -> Callable[[_Factory], _Factory]:
    """Returns a decorator that registers a model class or factory under ``name``.

    Args:
        name: the registry key, e.g. ``"mlp"``.
        description: a one-line description for ``list_models``; defaults to the first line of
            the factory's docstring (pass it for a ``functools.partial``).

    Raises:
        ValueError: when the decorator is applied, if ``name`` is already registered.
    """

    def decorator(factory: _Factory) -> _Factory:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered")
        doc = description if description is not None else inspect.getdoc(factory) or ""
        _REGISTRY[name] = (factory, doc.strip().split("\n", 1)[0])
        return factory

    return decorator


def _as_tuples(value: Any) -> Any:
    """Turns lists (JSON's form of tuples) back into tuples, recursively."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuples(v) for v in value)
    return value


def create_model(name: str, /, **config: Any) -> nn.Module:
    """Builds the model registered as ``name`` from its configuration.

    Lists in ``config`` are turned into tuples, so a config that went through JSON works.

    Args:
        name: a registered model name (see ``list_models``).
        **config: the model's attributes, e.g. ``hidden_sizes=(64,)``.

    Returns:
        An unbound ``flax.linen.Module``.

    Raises:
        ValueError: if ``name`` is unknown (listing known names), ``config`` has keys the
            model does not take (naming them and the allowed ones) or lacks one it needs.
    """
    if name not in _REGISTRY:
        known = ", ".join(repr(n) for n in sorted(_REGISTRY))
        raise ValueError(f"unknown model {name!r}; choose one of {known}")
    factory, _ = _REGISTRY[name]
    parameters = inspect.signature(factory).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    allowed = sorted({p.name for p in parameters if p.kind in named} - _MODULE_PLUMBING)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    unknown = sorted(set(config) & _MODULE_PLUMBING if takes_any else set(config) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown} for model {name!r}; allowed keys are {allowed}"
        )
    missing = sorted(
        p.name
        for p in parameters
        if p.kind in named and p.default is inspect.Parameter.empty and p.name not in config
    )
    if missing:
        raise ValueError(
            f"model {name!r} needs config key(s) {missing} (in Python create_model({name!r}, "
            f"{missing[0]}=...), on the command line --set {missing[0]}=...)"
        )
    return factory(**{key: _as_tuples(value) for key, value in config.items()})


def model_config(model: nn.Module) -> dict[str, Any]:
    """Returns the model's attributes as a dict, to save next to a checkpoint.

    The values are what the model was built with (ints, floats, strings, bools, tuples), so
    ``create_model(name, **model_config(model))`` builds an equal model.

    Raises:
        ValueError: if ``model`` is not a ``flax.linen.Module``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"`model` must be a flax.linen.Module, got {type(model).__name__}")
    return {
        field.name: getattr(model, field.name)
        for field in dataclasses.fields(model)
        if field.init and field.name not in _MODULE_PLUMBING
    }


def model_parameters(name: str) -> frozenset[str]:
    """The configuration keys that registered model ``name`` takes (``create_model``'s)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(_REGISTRY)}")
    parameters = inspect.signature(_REGISTRY[name][0]).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in parameters if p.kind in named) - _MODULE_PLUMBING


def list_models() -> list[tuple[str, str]]:
    """Returns ``(name, one-line description)`` for every registered model, sorted by name."""
    return [(name, _REGISTRY[name][1]) for name in sorted(_REGISTRY)]


def registered_name(model: nn.Module) -> str | None:
    """The registry name whose factory is ``type(model)`` itself, if exactly one is.

    Named variants registered as ``functools.partial`` objects are not found this way: pass
    their name explicitly where it matters (``run_experiment`` does).
    """
    names = [name for name, (factory, _) in _REGISTRY.items() if factory is type(model)]
    return names[0] if len(names) == 1 else None
