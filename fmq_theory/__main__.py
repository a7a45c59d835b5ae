"""``python -m fmq_theory`` runs the ``fmq`` command line."""

import sys

from fmq_theory.cli import main

sys.exit(main())
