"""Allow ``python -m painmeta``."""

import sys

from painmeta.cli import main

sys.exit(main())
