"""Platform tests import their helpers (support.py) and tools/ from the repository root."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
