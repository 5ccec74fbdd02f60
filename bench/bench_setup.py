"""What every benchmark does first, imported before anything of leadpipe's: this checkout's code on ``sys.path``
(whatever is installed), and Powertools quiet as in the local runtime (no EMF metric dumps or INFO log lines in the
middle of the figures). A benchmark is run as ``python bench/<name>.py``, so ``bench/`` is already on the path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for _path in (BENCH, ROOT / "local", ROOT / "shared"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
