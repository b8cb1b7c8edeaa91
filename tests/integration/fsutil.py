"""File-system helpers for tests that race the daemon on purpose."""
import os
import shutil


def rmtree_under_writer(path):
    """Remove a directory the daemon is writing into: a temp file it renames
    away between our listing and our unlink is gone already, not an error."""
    def gone(fn, p, exc):
        if not issubclass(exc[0], FileNotFoundError):
            raise exc[1]
    for _ in range(20):
        if not os.path.lexists(path):
            return
        shutil.rmtree(path, onerror=gone)
