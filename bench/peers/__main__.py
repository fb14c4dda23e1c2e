"""``python bench/peers`` — see suite.py (``bench/peers/run`` installs the peers first)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peers.suite import main  # noqa: E402

sys.exit(main())
