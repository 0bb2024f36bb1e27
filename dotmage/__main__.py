"""Entry point for `python -m dotmage` and for the dmage.pyz bootstrap."""

import sys

from dotmage.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
