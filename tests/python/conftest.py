"""pytest setup for the `import attnlab` tests: the package is taken from this checkout's
python/ (the operator library from $ATTNLAB_OPS_LIBRARY, which ctest sets to its build's, or
build/python/attnlab/)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "python"))
