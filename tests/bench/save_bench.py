#!/usr/bin/env python3
"""Benchmark: saving and unlocking a vault, against the standard-tool pipeline
run side by side on the same data.  Prints figures and ratios; asserts nothing.

  make bench-save       (or: python3 tests/bench/save_bench.py [BUILD_DIR])

Save:   vaultsyncctl sync (archive, hash, encrypt, temp file, fsync, rename,
        fsync dir) against  tar -cf - -C VAULT . | age -r R > out && sync out
        for a 512 MiB one-file vault and a 10,000-file vault, with the archive
        directory on tmpfs (CPU only) and on the real disk; on disk also
        against  dd if=/dev/zero bs=1M conv=fsync  of the archive's size into
        the same directory (the durable write alone).
Unlock: vaultsyncctl unlock against  age -d -i KEY out | tar -x  (the unlock
        figure also pays scrypt for identity.age; it is shown separately).
Memory: peak resident size of the parent across a 512 MiB save.

Before anything is timed, a few GiB of RAM are touched once and released: on a
VM whose hypervisor backs guest memory lazily, the first touch of a page costs
~15 us (writing 512 MiB into never-used memory took 2 s here instead of 0.2 s),
so otherwise the figures depend on which side happens to meet fresh memory.
The atomic save (a new file while the old one exists) met it and the baseline,
which truncates its own output and reuses those pages at once, did not.
"""
import mmap
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.path.join(os.path.dirname(__file__), "..", "..", "build"))
REPS = int(os.environ.get("VS_BENCH_REPS", "3"))
PASS = "bench passphrase"
SAVE_OVER_DD = {}


def touch_one(vault):
    """A new mtime on one file: the next save is a real one, not "unchanged"."""
    for dp, _, fns in os.walk(vault):
        if fns:
            os.utime(os.path.join(dp, sorted(fns)[0]), None)
            return


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sh(cmd, **kw):
    subprocess.run(cmd, shell=True, check=True, **kw)


def make_bytes(mib):
    """A maker of one file of mib MiB of random bytes."""
    def make(path):
        with open(os.path.join(path, "big.bin"), "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
    return make


make_big = make_bytes(512)


def make_many(path):
    """10,000 files of 0-8 KiB (4 KiB on average) in d*/e*/: three levels, as issue 12 has it."""
    for i in range(10000):
        d = os.path.join(path, "d%02d" % (i // 1000), "e%02d" % (i // 100 % 10))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d" % i), "wb") as f:
            f.write(os.urandom((i * 2654435761) % 8193))


class Daemon:
    def __init__(self, work, vault, state):
        self.work, self.vault, self.state = work, vault, state
        self.conf = os.path.join(work, "vaultsyncd.conf")
        with open(self.conf, "w") as f:
            f.write("RuntimeDir %s/run\nStateDir %s\nLogLevel warning\nWatcherDebounce 60s\n"
                    "StatusAPI no\nVault b\n  Path %s\n  Mount no\n  MountSize 1G\n"
                    % (work, state, vault))
        self.sock = os.path.join(work, "run", "ctl.sock")
        self.passfile = os.path.join(work, "pass")
        with open(self.passfile, "w") as f:
            f.write(PASS + "\n")

    def start(self, stdout=subprocess.DEVNULL):
        self.p = subprocess.Popen([os.path.join(BUILD, "vaultsyncd-dev"), "-f", self.conf],
                                  stdout=stdout)
        for _ in range(200):
            if self.ctl("status", check=False).returncode in (0, 1):
                return
            time.sleep(0.05)
        raise SystemExit("daemon did not start")

    def ctl(self, *args, check=True):
        return subprocess.run([os.path.join(BUILD, "vaultsyncctl"), "-s", self.sock] +
                              list(args), capture_output=True, text=True, check=check)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(30)


def bench_save(label, content, archive_base):
    work = tempfile.mkdtemp(prefix="vs-bench-", dir="/dev/shm")
    vault = os.path.join(work, "vault")
    os.makedirs(vault)
    content(vault)
    state = tempfile.mkdtemp(prefix="vs-bench-state-", dir=archive_base)
    d = Daemon(work, vault, state)
    d.start()
    try:
        d.ctl("init", "b", "--passphrase-file", d.passfile)
        recipient = open(os.path.join(state, "b", "recipient")).read().strip()
        out = os.path.join(state, "baseline.tar.age")
        ours, base, dd = [], [], []
        ddout = os.path.join(state, "dd.out")
        on_disk = not archive_base.startswith("/dev/shm")
        for i in range(REPS):
            touch_one(vault)
            ours.append(timed(lambda: d.ctl("sync", "b")))
            base.append(timed(lambda: sh("tar -cf - -C %s . | age -r %s > %s && sync %s"
                                         % (vault, recipient, out, out))))
            if on_disk:
                # The durable write itself: the archive's size, to the same directory.
                mib = -(-os.path.getsize(os.path.join(state, "b", "vault.tar.age")) >> 20)
                dd.append(timed(lambda: sh("dd if=/dev/zero of=%s bs=1M count=%d conv=fsync "
                                           "status=none" % (ddout, mib))))
                os.unlink(ddout)
        mo, mb = statistics.median(ours), statistics.median(base)
        print("  save %-26s vaultsync %7.3f s   tar|age+sync %7.3f s   ratio %.2fx"
              % (label, mo, mb, mb / mo))
        if dd:
            md = statistics.median(dd)
            print("  %-31s dd conv=fsync of the archive's size %7.3f s   vaultsync/dd %.2fx"
                  % ("", md, mo / md))
            SAVE_OVER_DD[label] = mo / md
        return d, work, state, recipient, mb / mo
    except BaseException:
        d.stop()
        raise


def warm_memory():
    """Touch and release enough RAM for the whole run (see the docstring)."""
    with open("/proc/meminfo") as f:
        avail = [int(l.split()[1]) << 10 for l in f if l.startswith("MemAvailable")][0]
    size = min(4 << 30, avail // 2) & ~(mmap.PAGESIZE - 1)
    m = mmap.mmap(-1, size)
    for off in range(0, size, mmap.PAGESIZE):
        m[off] = 1
    m.close()


def main():
    disk_base = os.environ.get("VS_BENCH_DISK", "/var/tmp")
    warm_memory()
    print("vaultsync save/unlock benchmark (median of %d; ratio > 1: vaultsync faster)" % REPS)
    results = {}
    for content_name, content in (("512 MiB one file", make_big), ("10,000 files", make_many)):
        for where, base in (("tmpfs", "/dev/shm"), ("disk", disk_base)):
            d, work, state, recipient, ratio = bench_save("%s, %s" % (content_name, where),
                                                          content, base)
            results[(content_name, where)] = ratio
            if content_name.startswith("512") and where == "tmpfs":
                # Peak memory: a fresh parent (init's scrypt is not counted) and one save.
                d.stop()
                d.start()
                touch_one(d.vault)
                d.ctl("sync", "b")
                with open("/proc/%d/status" % d.p.pid) as f:
                    hwm = [l for l in f if l.startswith("VmHWM")][0].split()[1]
                print("  peak resident memory of the parent during the 512 MiB save: %.1f MiB"
                      " (aim: under 32 MiB)" % (int(hwm) / 1024))
                # Unlock against age -d | tar -x.
                d.ctl("lock", "b")
                idf = os.path.join(work, "id.txt")
                # The median of three: the first run may meet memory never touched before.
                plain = "%s -d -p %s < %s/b/identity.age > %s" % (
                    os.path.join(BUILD, "vs-age"), d.passfile, state, idf)
                t_id = statistics.median(timed(lambda: sh(plain)) for _ in range(3))
                t_un = timed(lambda: d.ctl("unlock", "b", "--passphrase-file", d.passfile))
                dest = tempfile.mkdtemp(dir="/dev/shm")
                t_base = timed(lambda: sh("age -d -i %s %s/b/vault.tar.age | tar -x -C %s"
                                          % (idf, state, dest)))
                shutil.rmtree(dest)
                print("  unlock 512 MiB: vaultsync %.3f s (of which scrypt for identity.age "
                      "~%.3f s)   age -d | tar -x %.3f s   ratio %.2fx (%.2fx without scrypt)"
                      % (t_un, t_id, t_base, t_base / t_un, t_base / max(t_un - t_id, 1e-3)))
            d.stop()
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(state, ignore_errors=True)
    def met(ok):
        return "met" if ok else "NOT met"
    print("aims: 512 MiB on tmpfs >= 2.5x (%s), on disk within 1.25x of dd (%s); "
          "10,000 files >= 2x on tmpfs (%s) and on disk (%s)" % (
              met(results[("512 MiB one file", "tmpfs")] >= 2.5),
              met(SAVE_OVER_DD.get("512 MiB one file, disk", 99) <= 1.25),
              met(results[("10,000 files", "tmpfs")] >= 2),
              met(results[("10,000 files", "disk")] >= 2)))


if __name__ == "__main__":
    main()
