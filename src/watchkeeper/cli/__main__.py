"""``python -m watchkeeper.cli``: the same as the ``watchkeeper`` script."""

import sys

from watchkeeper.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
