"""``python -m qa``: the command line lives in qa.cli; this only hands over the exit status."""
import sys

from qa.cli import main

sys.exit(main())
