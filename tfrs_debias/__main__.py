"""``python -m tfrs_debias`` = ``tfrs-debias``."""

import sys

from tfrs_debias.cli import main

sys.exit(main())
