"""convae's version: one place, read by the package, its checkpoints and its build."""

__version__ = "0.1.0"
