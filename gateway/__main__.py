"""``python -m gateway``: the same as the ``couchgate`` command."""

import sys

from gateway.cli import main

sys.exit(main())
