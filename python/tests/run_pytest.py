"""CTest's entry to the Python tests: runs pytest on this folder, or exits 77 (CTest: skipped)
with a message when pytest is not installed (Debian: python3-pytest). As every test of the suite
(docs/TESTING.md, "Skips are never passes"), a run where some tests skipped and none failed
exits 77 too, naming them, so CTest reports it as skipped rather than passed."""
import os
import sys

try:
    import pytest
except ImportError:
    print("python tests skipped: pytest is not installed (apt-get install python3-pytest)")
    sys.exit(77)


class CountSkips:
    def __init__(self):
        self.skipped = []

    def pytest_runtest_logreport(self, report):
        if report.skipped:
            self.skipped.append(report.nodeid)


here = os.path.dirname(os.path.abspath(__file__))
skips = CountSkips()
rc = pytest.main(["-q", "-p", "no:cacheprovider", "-rs", here] + sys.argv[1:], plugins=[skips])
if rc == 0 and skips.skipped:
    print(f"SKIP (part): {len(skips.skipped)} Python tests skipped (reasons above): "
          + ", ".join(skips.skipped))
    sys.exit(77)
sys.exit(rc)
