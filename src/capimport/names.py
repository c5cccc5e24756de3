"""Distribution names in canonical form (PEP 503).

Our own one-line copy of ``packaging.utils.canonicalize_name``: importing
``packaging.utils`` pulls in ``packaging.tags`` (about 10 ms), and the runner
needs canonical names before the application starts.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return _SEPARATORS.sub("-", name).lower()
