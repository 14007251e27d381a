"""A run's saved config.json checked against the parser (kept apart from run/option_rules.py, which the
parser itself calls, so that neither imports the other)."""

from __future__ import annotations


def check_saved_config(data, source: str) -> dict:
    """A run's config.json checked against the parser: every option it stores has the type (and choice)
    that option takes; InputError naming the file and the field otherwise. Returns the dict."""
    from run.parser import build_parser
    from utils.errors import InputError

    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object of options, got {type(data).__name__}")
    for action in build_parser()._actions:
        if action.dest not in data or action.dest == "help":
            continue
        value = data[action.dest]
        if value is None and (action.default is None or _optional(action)):
            continue
        several = action.nargs in ("+", "*") or isinstance(action.nargs, int) and action.nargs > 0
        values = value if several else [value]
        if not isinstance(values, list) or not all(_fits(action, v) for v in values):
            raise InputError(
                f"{source}: field {action.dest!r} is {value!r}, not a valid --{action.dest} value; "
                "the file is damaged: re-run the command that made it"
            )
    return data


def _optional(action) -> bool:
    from run.option_types import optional_float, optional_int

    return action.type in (optional_float, optional_int)


def _fits(action, value) -> bool:
    """Whether a stored value is one the option could have parsed to."""
    from run.option_types import optional_float, optional_int, str2bool

    kind = action.type
    if action.nargs == 0:  # a flag
        return isinstance(value, bool)
    if kind in (int, optional_int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind in (float, optional_float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is str2bool:
        ok = isinstance(value, bool)
    else:  # str, feature_direction
        ok = isinstance(value, str)
    return ok and (action.choices is None or value in action.choices)
