"""``python -m mlops.registry``: deprecated, ``python -m mlops registry`` replaces it."""

import sys

from mlops.cli.main import main

print("python -m mlops.registry is deprecated: use python -m mlops registry", file=sys.stderr)
sys.exit(main(["registry", *sys.argv[1:]]))
