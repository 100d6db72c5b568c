"""`python -m core ...`: see core/app/cli.py."""

import sys

from core.app import main

if __name__ == "__main__":
    sys.exit(main())
