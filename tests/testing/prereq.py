"""What the Python tests share about their prerequisites.

A missing prerequisite (a Python module, protoc, chromium) skips a test
(exit 77, which ctest reports as skipped), except under CI=true, where it
fails it: CI must never count a test it did not run.
"""

import os
import sys

SKIP = 77
# Where Debian's python3-* packages live when `python3` on PATH is another
# Python (pyenv, a venv).
SYSTEM_PYTHONS = ("/usr/bin/python3",)


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(test, why):
    """Skips `test` (exit 77), or fails it under CI, saying why."""
    if in_ci():
        sys.stderr.write("%s: FAILED under CI=true: %s\n" % (test, why))
        sys.exit(1)
    sys.stderr.write("%s: SKIPPED: %s\n" % (test, why))
    sys.exit(SKIP)


def reexec_with_system_python(guard):
    """Runs this script again with the system's Python, once (`guard` is
    the environment variable that marks the second run); returns when there
    is no other Python to try."""
    if os.environ.get(guard):
        return
    for candidate in SYSTEM_PYTHONS:
        if (os.path.exists(candidate) and
                os.path.realpath(candidate) != os.path.realpath(sys.executable)):
            os.environ[guard] = "1"
            os.execv(candidate, [candidate] + sys.argv)
