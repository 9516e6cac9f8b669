"""``python -m rag_core.cli``: the same as the ``rag`` command."""

import sys

from rag_core.cli.main import main

sys.exit(main())
