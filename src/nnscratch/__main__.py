"""``python -m nnscratch`` is the ``nnscratch`` command."""
import sys

from .apps.cli import main

sys.exit(main())
