"""``python -m couchgate_sync`` is the ``couchgate-sync`` command."""

from couchgate_sync.cli import main

raise SystemExit(main())
