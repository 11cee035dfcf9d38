"""``python -m medtl``: see :mod:`medtl.cli`."""

import sys

from medtl.cli import main

sys.exit(main())
