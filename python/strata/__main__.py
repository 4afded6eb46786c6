"""`python -m strata` is `python -m strata.batch`."""
import sys

from .batch import main

sys.exit(main())
