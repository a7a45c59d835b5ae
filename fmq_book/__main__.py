"""``python -m fmq_book build|serve``: see :func:`fmq_book.main`."""

import sys

from fmq_book import main

sys.exit(main())
