"""`python -m core COMMAND ...`: the command line (core.cli)."""

import sys

from core import paths
from core.cli import main
from core.native_log import native_logs_to_file

if __name__ == "__main__":
    native_logs_to_file(paths.native_log())  # TensorFlow's C++ log lines go to a file, not between the progress lines
    sys.exit(main())
