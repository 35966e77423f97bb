"""CTest's entry to the Python tests: runs pytest on this folder, or exits 77 (CTest: skipped)
with a message when pytest is not installed (Debian: python3-pytest)."""
import os
import sys

try:
    import pytest
except ImportError:
    print("python tests skipped: pytest is not installed (apt-get install python3-pytest)")
    sys.exit(77)

here = os.path.dirname(os.path.abspath(__file__))
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-rs", here] + sys.argv[1:]))
