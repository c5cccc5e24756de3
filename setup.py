"""Build configuration that pyproject.toml cannot express: the optional C accelerator.

``capimport._speedups`` makes the stack walk cheaper; when it cannot be built
(no compiler), capimport installs and works with its pure-Python walk.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("capimport._speedups", ["src/capimport/_speedups.c"], optional=True),
    # The native decision core (docs/decisions.md): without it, the Python hook decides.
    Extension("capimport._core", ["src/capimport/_core.c"], optional=True,
              depends=["src/capimport/_core_paths.h", "src/capimport/_core_match.h", "src/capimport/_core_gate.h", "src/capimport/_core_chains.h",
                       "src/capimport/_core_environ.h", "src/capimport/_core_tamper.h",
                       "src/capimport/_core_bytecode.h", "src/capimport/_core_callbacks.h",
                       "src/capimport/_core_sqlite.h"]),
])
