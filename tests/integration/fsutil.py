"""File-system helpers for tests that race the daemon on purpose."""
import errno
import os
import shutil


def rmtree_under_writer(path):
    """Remove a directory the daemon is writing into: a temp file it renames
    away between our listing and our unlink is gone already, and one it
    creates after our listing leaves the directory not yet empty: both mean
    another pass, not an error."""
    def racing(fn, p, exc):
        if not (issubclass(exc[0], FileNotFoundError) or
                (issubclass(exc[0], OSError) and exc[1].errno == errno.ENOTEMPTY)):
            raise exc[1]
    for _ in range(50):
        if not os.path.lexists(path):
            return
        shutil.rmtree(path, onerror=racing)
    assert not os.path.lexists(path), "%s keeps being written into" % path
