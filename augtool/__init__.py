"""augtool: offline, reproducible dataset augmentation for blood-smear images.

The library behind the ``augtool`` command. It knows no terminal: the command
line lives in the top-level ``cli`` module.
"""

__version__ = "0.1.0"
