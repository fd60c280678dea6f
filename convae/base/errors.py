"""The one exception type users of convae need to catch.

Every failure caused by user input (a bad name, a missing file, a broken checkpoint)
raises a subclass of :class:`ConvaeError` whose message says what is wrong and what
to do. The CLI and the app print that message instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class ConvaeError(Exception):
    """Base class for errors whose message is meant for the user."""


class ConfigError(ConvaeError, ValueError):
    """An unknown architecture, dataset, noise kind or an invalid setting."""


class DatasetError(ConvaeError):
    """A dataset that cannot be found, read or downloaded."""


class CheckpointError(ConvaeError):
    """A checkpoint that is missing, unreadable, unsafe or does not fit."""


def check_choice(
    what: str,
    value: object,
    choices: Iterable[str],
    *,
    error: type[ConvaeError] = ConfigError,
    hint: str = "",
) -> None:
    """Refuse a name that is not one of ``choices``, listing the ones that exist.

    Example: ``check_choice("loss", "l1", ("mse", "bce"))`` raises
    ``ConfigError("unknown loss 'l1'; choose one of: mse, bce")``.

    Args:
        what: what the name names, e.g. ``"architecture"``.
        hint: appended to the message, e.g. where the choices are described.
    """
    choices = list(choices)
    if value not in choices:
        raise error(
            f"unknown {what} {value!r}; choose one of: {', '.join(choices)}"
            + (f" {hint}" if hint else "")
        )
