"""`python -m genprm ...` runs the genprm command line (genprm.cli)."""
import sys

from .cli import main

sys.exit(main())
