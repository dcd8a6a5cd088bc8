"""``python -m orchestration.cli`` is the ``meld`` command."""

import sys

from orchestration.cli import main

sys.exit(main())
