"""Dakghar: a self-hosted SMS gateway.

The package is laid out by concern: ``core`` (pure domain logic), ``smpp`` (the SMPP 3.4 engine),
``store`` (persistence), ``api`` (the REST API), ``pipeline`` (queue and dispatch) and ``cli``.
"""

from dakghar.errors import DakgharError

__version__ = "0.1.0"
__all__ = ["DakgharError", "__version__"]
