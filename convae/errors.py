"""The one exception type users of convae need to catch.

Every failure caused by user input (a bad name, a missing file, a broken checkpoint)
raises a subclass of :class:`ConvaeError` whose message says what is wrong and what
to do. The CLI and the app print that message instead of a traceback.
"""


class ConvaeError(Exception):
    """Base class for errors whose message is meant for the user."""


class ConfigError(ConvaeError, ValueError):
    """An unknown architecture, dataset, noise kind or an invalid setting."""


class DatasetError(ConvaeError):
    """A dataset that cannot be found, read or downloaded."""


class CheckpointError(ConvaeError):
    """A checkpoint that is missing, unreadable, unsafe or does not fit."""
