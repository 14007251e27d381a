"""The registry of module-finding methods (docs/architecture.md).

Each method is a plain function `(network: LayeredNetwork, data: Task | None, options) -> Partition`,
registered under a name. `find_modules(name, ...)` looks one up; the CLI's `--method` picks the name
(default "sculpt", the Neural Sculpting detection). Methods register in their own modules; the registry
imports them lazily so that choosing one never imports the others' dependencies.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from utils.errors import InputError

# name -> "module:function"; resolved on first use.
METHODS: dict[str, str] = {
    "sculpt": "detection_pipeline.detect:sculpt_method",
    "spectral": "detection_pipeline.spectral.cluster:spectral_method",
    "newman": "detection_pipeline.associations.method:newman_method",
}


def register(name: str, target: str) -> None:
    """Add a method: `target` is "package.module:function"."""
    METHODS[name] = target


def method_names() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> Callable:
    if name not in METHODS:
        raise InputError(f"unknown module-finding method {name!r} (choose from {', '.join(method_names())})")
    module, function = METHODS[name].split(":")
    return getattr(importlib.import_module(module), function)


def find_modules(name: str, network, data=None, options=None):
    """Run the method `name` on `network`; returns a Partition."""
    return get_method(name)(network, data, options)
