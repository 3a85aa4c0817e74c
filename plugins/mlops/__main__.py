"""``python -m mlops <command>``: see ``mlops.cli.main``."""

import sys

from mlops.cli.main import main

sys.exit(main())
