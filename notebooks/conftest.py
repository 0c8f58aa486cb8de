"""nbval kills the tutorial kernels, so their atexit clean-up never runs: remove the scratch
folders (``aebench-tutorial-*``) they made during this test session. It lives beside the
notebooks, so it runs whenever they are collected (``pytest --nbval notebooks`` too)."""

import glob
import os
import shutil
import tempfile
import time

_START = time.time()


def pytest_sessionfinish(session, exitstatus):
    for path in glob.glob(os.path.join(tempfile.gettempdir(), "aebench-tutorial-*")):
        if os.path.getmtime(path) >= _START - 1:
            shutil.rmtree(path, ignore_errors=True)
