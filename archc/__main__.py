"""`python -m archc ...` is `archc ...` (torchrun launches `-m archc train ...` this way)."""

import sys

from archc.cli.main import main

sys.exit(main())
