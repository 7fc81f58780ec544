"""``python -m fastcnn``: the same command line as the ``fastcnn`` console script."""
import sys

from fastcnn.cli import main

sys.exit(main())
