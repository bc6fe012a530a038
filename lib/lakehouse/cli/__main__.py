"""``python -m lakehouse.cli``: the same as the ``lakehouse`` console script."""

import sys

from lakehouse.cli.main import main

sys.exit(main())
