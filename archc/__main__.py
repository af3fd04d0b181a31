"""`python -m archc ...` is `archc ...` (torchrun launches `-m archc train ...` this way)."""

import sys

from archc.cli import main

sys.exit(main())
