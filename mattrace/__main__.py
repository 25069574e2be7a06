"""``python -m mattrace``: the same as the ``mattrace`` console command."""

import sys

from mattrace.cli import main

if __name__ == "__main__":
    sys.exit(main())
