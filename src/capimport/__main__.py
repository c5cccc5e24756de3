"""``python -m capimport [options] (script.py | -m module | -c code) [args...]``."""

import sys

from capimport.runner import main

if __name__ == "__main__":
    sys.exit(main())
