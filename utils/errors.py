"""The project's own error types, importable from every layer.

Library code (models/, utils/, detection_pipeline/) raises these (or plain ValueError) with messages about
values and files; only run/ and main.py turn them into the one-line CLI message with exit code 2.
"""

from __future__ import annotations


class SculptError(ValueError):
    """Bad input or an unusable environment: the message says what is wrong and how to fix it."""


class ConfigError(SculptError):
    """Bad command-line input. main.py prints the message on one line and exits with code 2."""


class InputError(SculptError):
    """A file, network, partition or data set that cannot be used as given."""


class NetworkShapeError(InputError):
    """Arrays of a network that do not chain or do not match each other."""


class NoPathError(InputError):
    """The condensed network has no path from its inputs to its outputs, so there is nothing to detect."""


class RunBusyError(SculptError):
    """Another process holds the lock of a run folder."""


class OutputError(SculptError):
    """A result cannot be written: read-only or missing folder, a file in the way, disk full."""


class NumericalError(SculptError):
    """Training or a loaded network produced NaN or infinite values."""
