#!/usr/bin/env python3
"""Benchmark: unlocking a 512 MiB vault through the decoder child, against
an earlier build that unpacked inside the parent and against the standard
tools, all in the same run on the same archive.  Prints figures and ratios;
asserts nothing.

Two standard pipelines, because an unlock starts from a passphrase:
  age -d -i identity.age | tar -x   the same inputs as the daemon's (the
                                    passphrase, identity.age, the archive),
                                    so the same scrypt: the like-for-like
  age -d -i KEY | tar -x            a plaintext identity file, which the
                                    daemon by design never holds: no scrypt,
                                    so it is also compared without ours

  python3 tests/bench/unlock_bench.py BUILD [EARLIER_BUILD]

EARLIER_BUILD is a build tree of the version to compare with, e.g.
  git worktree add /tmp/vs-before acfd6df && make -C /tmp/vs-before -j2
  python3 tests/bench/unlock_bench.py build /tmp/vs-before/build

Each unlock is timed from vaultsyncctl's start to its answer and includes
scrypt for identity.age; the archive is on tmpfs, so the figures are CPU and
memory.  Rounds alternate between the builds so that neither gets a quieter
machine.
"""
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import save_bench as sb  # noqa: E402
from conftest import pty_run  # noqa: E402

REPS = int(os.environ.get("VS_BENCH_REPS", "5"))


def setup(build, archive_from=None):
    """A daemon of this build with vault b: 512 MiB, saved and locked.  With
    archive_from (another setup's state directory), that archive and identity."""
    sb.BUILD = build
    work = tempfile.mkdtemp(prefix="vs-ubench-", dir="/dev/shm")
    vault = os.path.join(work, "vault")
    os.makedirs(vault)
    state = tempfile.mkdtemp(prefix="vs-ubench-state-", dir="/dev/shm")
    d = sb.Daemon(work, vault, state)
    d.build = build
    if archive_from is not None:
        shutil.copytree(os.path.join(archive_from, "b"), os.path.join(state, "b"))
        if os.path.exists(os.path.join(state, "b", "unlocked")):
            os.unlink(os.path.join(state, "b", "unlocked"))
        d.start()
        return d, work, state
    sb.make_big(vault)
    d.start()
    d.ctl("init", "b", "--passphrase-file", d.passfile)
    d.ctl("lock", "b")
    return d, work, state


def plain_identity(build, passfile, state, out):
    """identity.age decrypted into out (the plaintext KEY of the baseline); the seconds it
    took, which are scrypt's."""
    return sb.timed(lambda: sb.sh("%s -d -p %s < %s/b/identity.age > %s" % (
        os.path.join(build, "vs-age"), passfile, state, out)))


def standard_unlock(state, key=None):
    """The seconds of  age -d -i X vault.tar.age | tar -x  into a fresh directory in RAM:
    X is key, a plaintext identity file, or else identity.age, whose passphrase age asks
    for on a terminal (it reads it from /dev/tty, never from a pipe)."""
    dest = tempfile.mkdtemp(dir="/dev/shm")
    cmd = "age -d -i %s %s/b/vault.tar.age | tar -x -C %s" % (
        key or os.path.join(state, "b", "identity.age"), state, dest)
    try:
        if key is not None:
            return sb.timed(lambda: sb.sh(cmd))
        t = time.perf_counter()
        rc, said = pty_run(["/bin/sh", "-c", cmd], [sb.PASS])
        t = time.perf_counter() - t
        if rc != 0 or "passphrase" not in said.lower():
            raise RuntimeError("%s: exit %d: %s" % (cmd, rc, said))
        return t
    finally:
        shutil.rmtree(dest)


def unlock_once(d):
    sb.BUILD = d.build
    t = sb.timed(lambda: d.ctl("unlock", "b", "--passphrase-file", d.passfile))
    d.ctl("lock", "b")	# nothing changed: no new archive, the vault is wiped
    return t


def main():
    new = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    old = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    sb.warm_memory()
    print("vaultsync unlock benchmark, 512 MiB in one file (median of %d)" % REPS)
    dn, wn, sn = setup(new)
    setups = [(new, dn, wn, sn)]
    if old is not None:
        do, wo, so = setup(old, archive_from=sn)
        setups.append((old, do, wo, so))
    idf = os.path.join(wn, "id.txt")
    # What every unlock pays before the archive: scrypt for identity.age (the baseline reads KEY).
    t_id = statistics.median(plain_identity(new, dn.passfile, sn, idf) for _ in range(3))
    times = {b: [] for b, _, _, _ in setups}
    base, base_id = [], []
    try:
        for _ in range(REPS):
            for b, d, _, _ in setups:
                times[b].append(unlock_once(d))
            base.append(standard_unlock(sn, idf))
            base_id.append(standard_unlock(sn))
    finally:
        for _, d, w, s in setups:
            d.stop()
            shutil.rmtree(w, ignore_errors=True)
            shutil.rmtree(s, ignore_errors=True)
    tn, tb = statistics.median(times[new]), statistics.median(base)
    print("  this build (decoder child)       %.3f s" % tn)
    if old is not None:
        to = statistics.median(times[old])
        print("  earlier build (in the parent)    %.3f s   this/earlier %.2fx (aim: at most 1.10x)"
              % (to, tn / to))
    ti = statistics.median(base_id)
    print("  age -d -i identity.age | tar -x  %.3f s   ratio %.2fx (> 1: vaultsync faster)"
          % (ti, ti / tn))
    print("  age -d -i KEY | tar -x           %.3f s   ratio %.2fx (> 1: vaultsync faster)"
          % (tb, tb / tn))
    print("  scrypt for identity.age          %.3f s   without it: vaultsync %.3f s, ratio %.2fx"
          % (t_id, tn - t_id, tb / max(tn - t_id, 1e-3)))


if __name__ == "__main__":
    main()
