"""Binding a spec's arguments to an augmentation's declared parameters, with checks and
did-you-mean, and showing the parameters in help."""

from __future__ import annotations

from cnnkit.augment.spec import Call, spec_error
from cnnkit.contracts._augmentations import AugmentParam
from cnnkit.registry import unknown_name_message

KINDS = ("int", "float", "pair", "bool", "choice")


def signature(params: tuple[AugmentParam, ...]) -> str:
    """``(size=model's, padding=0 [0..])`` for help texts."""
    parts = []
    for p in params:
        default = "model's" if p.name == "size" and p.default is None else repr(p.default)
        bounds = ""
        if p.choices:
            bounds = " [" + "|".join(p.choices) + "]"
        elif p.min is not None or p.max is not None:
            bounds = f" [{'' if p.min is None else f'{p.min:g}'}..{'' if p.max is None else f'{p.max:g}'}]"
        parts.append(f"{p.name}={default}{bounds}")
    return "(" + ", ".join(parts) + ")"


def _number(value: object, param: AugmentParam, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if param.kind == "int" and not float(value).is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    if (param.min is not None and value < param.min) or (param.max is not None and value > param.max):
        low = "" if param.min is None else f"{param.min:g}"
        high = "" if param.max is None else f"{param.max:g}"
        raise ValueError(f"{what} must be in {low}..{high}, got {value!r}")
    return int(value) if param.kind == "int" else float(value)


def check_value(param: AugmentParam, value: object) -> object:
    if value is None and param.default is None:
        return None
    if param.kind in ("int", "float"):
        return _number(value, param, param.name)
    if param.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{param.name} must be True or False, got {value!r}")
        return value
    if param.kind == "choice":
        if value not in param.choices:
            raise ValueError(f"{param.name} must be one of {', '.join(param.choices)}, got {value!r}")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value, param, param.name)
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ValueError(f"{param.name} must be a number or a pair (low, high), got {value!r}")
    low, high = (_number(v, param, param.name) for v in value)
    if low > high:
        raise ValueError(f"{param.name} must be (low, high) with low <= high, got {value!r}")
    return (low, high)


def bind(call: Call, params: tuple[AugmentParam, ...], spec: str) -> dict[str, object]:
    """``call``'s arguments as keyword arguments for the factory, defaults filled in."""
    names = [p.name for p in params]
    if len(call.args) > len(params):
        raise spec_error(spec, call.position, f"{call.name} takes at most {len(params)} argument(s) {signature(params)}, "
                         f"got {len(call.args)}")
    given = dict(zip(names, call.args))
    for key, value in call.kwargs.items():
        if key not in names:
            hint = f"{call.name} takes {signature(params) if params else 'no arguments'}."
            message = unknown_name_message(f"parameter of {call.name}", key, names, hint)
            raise spec_error(spec, call.position, message if message.endswith(hint) else f"{message} {hint}")
        if key in given:
            raise spec_error(spec, call.position, f"{call.name} got {key} twice")
        given[key] = value
    bound = {}
    for param in params:
        try:
            bound[param.name] = check_value(param, given[param.name]) if param.name in given else param.default
        except ValueError as exc:
            raise spec_error(spec, call.position, f"{call.name}: {exc}") from None
    return bound
