"""`python -m latesearch` runs the console command."""

import sys

from latesearch.cli.main import main

sys.exit(main())
