"""``python -m tfrs_debias.cli`` = ``tfrs-debias``."""

import sys

from tfrs_debias.cli.main import main

sys.exit(main())
