"""capimport: capability manifests for Python distributions, enforced at run time.

``python -m capimport app.py`` runs an application so that each installed
distribution can do only what its manifest, unified over the dependency
graph, allows. ``capimport audit`` shows what every distribution may do and
why; ``capimport generate`` writes manifests to review.
"""

from __future__ import annotations

from .errors import CapabilityError, CapabilityImportError, ConfigError

__version__ = "0.1.0"
__all__ = ["CapabilityError", "CapabilityImportError", "ConfigError", "enable", "__version__"]


def enable(config=None, mode=None, **options):
    """Start enforcement in this process; it cannot be switched off again."""
    from .enforcer import enable as _enable

    return _enable(config=config, mode=mode, **options)
