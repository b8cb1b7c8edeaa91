#!/usr/bin/env python3
"""Benchmark: how each cost grows with the file count and with the byte count.
Prints a table and ratios; asserts nothing.

  python3 tests/bench/scale_bench.py [BUILD_DIR]

Six vaults on tmpfs, archives on tmpfs (so the figures are CPU and memory,
not the disk): 1,000, 10,000 and 100,000 files of 0-8 KiB (4 KiB on average,
ten files a directory, so 100,000 files lie in 10,000 directories under two
levels), and one file of 16, 128 and 512 MiB.  For each:

  save      vaultsyncctl sync after one file changed (archive, hash, encrypt,
            fsync, rename), wall time, with  tar -cf - | age -r R > out  on
            the same vault in the same run beside it
  tick      vaultsyncctl sync with nothing changed (the change check's stat
            scan), the parent's CPU
  unlock    lock, then vaultsyncctl unlock (scrypt, decoder, extraction),
            wall time, with  age -d -i identity.age | tar -x  beside it (the
            same inputs, so the same scrypt; see unlock_bench.py), and the
            same unlock less its scrypt against  age -d -i KEY | tar -x
  RSS       the parent's peak resident memory across all of that, from a mark
            set after init (init's own scrypt is not counted)
  watches   the directories the watcher watches, against the vault's

Then, per row after the first of its kind, how much each cost grew against
how much the vault grew (1.0: linear).
"""
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import save_bench as sb  # noqa: E402
from tick_bench import LoggingDaemon, change_one, measured_syncs  # noqa: E402
from unlock_bench import plain_identity, standard_unlock  # noqa: E402

REPS = int(os.environ.get("VS_BENCH_REPS", "3"))
IDLE_SYNCS = 10


def make_files(n):
    def make(path):
        for i in range(n):
            d = os.path.join(path, "d%03d" % (i // 1000), "e%03d" % (i // 10 % 100))
            if i % 10 == 0:
                os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "f%06d" % i), "wb") as f:
                f.write(os.urandom((i * 2654435761) % 8193))
    return make


def peak_rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        return [int(l.split()[1]) for l in f if l.startswith("VmHWM")][0] / 1024


def reset_peak(pid):
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def row(label, content, size):
    work = tempfile.mkdtemp(prefix="vs-sbench-", dir="/dev/shm")
    vault = os.path.join(work, "vault")
    os.makedirs(vault)
    t = time.perf_counter()
    content(vault)
    made = time.perf_counter() - t
    dirs = sum(len(dn) for _, dn, _ in os.walk(vault)) + 1
    state = tempfile.mkdtemp(prefix="vs-sbench-state-", dir="/dev/shm")
    d = LoggingDaemon(work, vault, state)
    d.start()
    r = {"label": label, "size": size, "dirs": dirs, "made": made}
    try:
        d.ctl("init", "b", "--passphrase-file", d.passfile)
        d.ctl("sync", "b")
        reset_peak(d.p.pid)
        recipient = open(os.path.join(state, "b", "recipient")).read().strip()
        saves, base, ticks, scans = [], [], [], []
        for _ in range(REPS):
            change_one(vault)
            time.sleep(0.05)
            saves.append(sb.timed(lambda: d.ctl("sync", "b")))
            out = os.path.join(work, "base.tar.age")
            base.append(sb.timed(lambda: sb.sh("tar -cf - -C %s . | age -r %s > %s"
                                               % (vault, recipient, out))))
            os.unlink(out)
            time.sleep(0.05)
            cpu, _, _ = measured_syncs(d, IDLE_SYNCS)
            ticks.append(cpu)
            scans += [e["scan_us"] / 1000 for e in d.tick_ends()[-IDLE_SYNCS:]]
        r["save"], r["save_base"] = statistics.median(saves), statistics.median(base)
        r["tick"], r["scan"] = statistics.median(ticks), statistics.median(scans)
        st = d.ctl("status", "--json", check=False)
        r["watches"] = watches_of(st.stdout)
        idf = os.path.join(work, "id.txt")
        # The median of three: the first run may meet memory never touched before.
        r["scrypt"] = statistics.median(plain_identity(sb.BUILD, d.passfile, state, idf)
                                        for _ in range(3))
        unl, ubase, ukey = [], [], []
        for _ in range(REPS):
            d.ctl("lock", "b")
            unl.append(sb.timed(lambda: d.ctl("unlock", "b", "--passphrase-file",
                                              d.passfile)))
            ubase.append(standard_unlock(state))
            ukey.append(standard_unlock(state, idf))
        r["unlock"], r["unlock_base"] = statistics.median(unl), statistics.median(ubase)
        r["unlock_key"] = statistics.median(ukey)
        r["rss"] = peak_rss_mib(d.p.pid)
        return r
    finally:
        d.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


def watches_of(status_json):
    """The watched-directory count the status gives, if it gives one."""
    try:
        v = [v for v in json.loads(status_json)["vaults"] if v["name"] == "b"][0]
    except (ValueError, IndexError, KeyError):
        return None
    return v.get("watcher", {}).get("watches")


def growth(a, b, key, by):
    """Cost growth over vault growth: 1.0 is linear, below 1 sublinear."""
    if not a[key] or not b[key]:
        return "-"
    return "%.2f" % ((b[key] / a[key]) / (b[by] / a[by]))


def main():
    sb.BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    sb.warm_memory()
    print("vaultsync scaling benchmark (median of %d; tmpfs vault and archives; ratios > 1: "
          "vaultsync faster)" % REPS)
    rows = []
    for label, content, size in (("1,000 files", make_files(1000), 1000),
                                 ("10,000 files", make_files(10000), 10000),
                                 ("100,000 files", make_files(100000), 100000),
                                 ("16 MiB", sb.make_bytes(16), 16),
                                 ("128 MiB", sb.make_bytes(128), 128),
                                 ("512 MiB", sb.make_bytes(512), 512)):
        r = row(label, content, size)
        rows.append(r)
        nos = r["unlock"] - r["scrypt"]
        # Where scrypt is nearly all of the unlock, the rest is a difference of two noisy
        # figures: a ratio of it would say nothing.
        less = ("less scrypt %.3f s against age -i KEY|tar %.3f s, %.2fx"
                % (nos, r["unlock_key"], r["unlock_key"] / nos)
                if nos >= 0.1 and nos >= r["unlock"] / 4 else
                "less scrypt: under a quarter of it, no ratio")
        print("  %-14s save %7.3f s (tar|age %7.3f s, %.2fx)  no-change tick %7.2f ms CPU "
              "(scan %7.2f ms)  unlock %7.3f s (age -i identity.age|tar %7.3f s, %.2fx; %s)  "
              "parent peak RSS %5.1f MiB  dirs %d  watches %s"
              % (label, r["save"], r["save_base"], r["save_base"] / r["save"], r["tick"] * 1000,
                 r["scan"], r["unlock"], r["unlock_base"], r["unlock_base"] / r["unlock"],
                 less, r["rss"], r["dirs"],
                 r["watches"] if r["watches"] is not None else "-"), flush=True)
    print("growth of each cost against the vault's growth (1.00: linear):")
    for a, b in ((rows[0], rows[1]), (rows[1], rows[2]), (rows[3], rows[4]), (rows[4], rows[5])):
        print("  %-14s -> %-14s save %s  no-change tick %s  unlock %s  peak RSS %s"
              % (a["label"], b["label"], growth(a, b, "save", "size"),
                 growth(a, b, "tick", "size"), growth(a, b, "unlock", "size"),
                 growth(a, b, "rss", "size")))
    big = rows[2]["rss"]
    print("aim: the parent's peak RSS under 32 MiB for 100,000 files: %.1f MiB (%s)"
          % (big, "met" if big < 32 else "NOT met"))


if __name__ == "__main__":
    main()
