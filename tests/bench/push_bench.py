#!/usr/bin/env python3
"""Benchmark: pushing a 256 MiB archive to S3 (a throwaway Ceph RGW on
127.0.0.1), against the standard tools on the same file, same server, same
run.  Prints figures and ratios; asserts nothing.

  make bench      (or: python3 tests/bench/push_bench.py [BUILD_DIR])

vaultsync:  `vaultsyncctl push VAULT` on a vault whose latest is already
            remote: exactly one upload of the archive (the history copy),
            through the control socket, the parent and the sandboxed uploader.
aws:        `/usr/bin/aws s3 cp ARCHIVE s3://...` (multipart, its default
            threads and part size).
curl:       one `curl --aws-sigv4 -T ARCHIVE` PUT with UNSIGNED-PAYLOAD: one
            stream, no hashing, the server's own ceiling.
Aims: at least 1.3x aws, at least 0.9x curl.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from rgwbench import RGW

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.path.join(os.path.dirname(__file__), "..", "..", "build"))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPS = int(os.environ.get("VS_BENCH_REPS", "3"))
SIZE_MIB = int(os.environ.get("VS_BENCH_PUSH_MIB", "256"))
PASS = "bench passphrase"


def timed(argv, env=None):
    t = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit("%s failed: %s%s" % (argv[0], r.stdout, r.stderr))
    return dt


def main():
    work = tempfile.mkdtemp(prefix="vs-pbench-", dir="/dev/shm")
    rgw = None
    proc = None
    try:
        rgw = RGW(work)
        s3 = rgw.env
        vault = os.path.join(work, "vault")
        os.makedirs(vault)
        with open(os.path.join(vault, "big.bin"), "wb") as f:
            for _ in range(SIZE_MIB - 1):	# the archive is the file plus tar and age framing
                f.write(os.urandom(1 << 20))
        conf = os.path.join(work, "vaultsyncd.conf")
        with open(conf, "w") as f:
            f.write("RuntimeDir %s/run\nStateDir %s/state\nLogLevel warning\nStatusAPI no\n"
                    "WatcherDebounce 60s\nVault b\n  Path %s\n  Mount no\n  MountSize 1G\n"
                    "%s  HistoryKeep 0\n" % (work, work, vault, rgw.vault_conf("bench")))
        passfile = os.path.join(work, "pass")
        with open(passfile, "w") as f:
            f.write(PASS + "\n")
        proc = subprocess.Popen([os.path.join(BUILD, "vaultsyncd-dev"), "-f", conf],
                                stdout=subprocess.DEVNULL)
        ctl = [os.path.join(BUILD, "vaultsyncctl"), "-s", os.path.join(work, "run", "ctl.sock")]
        for _ in range(200):
            if subprocess.run(ctl + ["status"], capture_output=True).returncode in (0, 1):
                break
            time.sleep(0.05)
        subprocess.run(ctl + ["init", "b", "--passphrase-file", passfile], check=True,
                       capture_output=True)
        subprocess.run(ctl + ["sync", "b"], check=True, capture_output=True, timeout=600)
        archive = os.path.join(work, "state", "b", "vault.tar.age")
        size = os.path.getsize(archive)
        env = {"PATH": "/usr/bin:/bin", "HOME": work, "AWS_ACCESS_KEY_ID": s3["VS_S3_ACCESS_KEY"],
               "AWS_SECRET_ACCESS_KEY": s3["VS_S3_SECRET_KEY"],
               "AWS_DEFAULT_REGION": s3["VS_S3_REGION"], "AWS_CONFIG_FILE": "/dev/null",
               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"}
        url = "%s/%s/bench-curl/obj" % (s3["VS_S3_ENDPOINT"], s3["VS_S3_BUCKET"])
        ours, aws, curl = [], [], []
        for i in range(REPS):
            ours.append(timed(ctl + ["push", "b"]))
            time.sleep(1.05)	# a new history name each time
            aws.append(timed(["/usr/bin/aws", "--endpoint-url", s3["VS_S3_ENDPOINT"], "s3",
                              "cp", "--only-show-errors", archive,
                              "s3://%s/bench-aws/obj%d" % (s3["VS_S3_BUCKET"], i)], env))
            curl.append(timed(["curl", "-sS", "-f", "-o", "/dev/null", "--aws-sigv4",
                               "aws:amz:%s:s3" % s3["VS_S3_REGION"], "--user",
                               "%s:%s" % (s3["VS_S3_ACCESS_KEY"], s3["VS_S3_SECRET_KEY"]),
                               "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                               "-T", archive, url]))
        mo, ma, mc = statistics.median(ours), statistics.median(aws), statistics.median(curl)
        mib = size / (1 << 20)
        print("push benchmark: %.0f MiB archive to RGW on 127.0.0.1, median of %d"
              " (ratio > 1: vaultsync faster)" % (mib, REPS))
        print("  vaultsync push     %7.3f s  %6.1f MiB/s" % (mo, mib / mo))
        print("  aws s3 cp          %7.3f s  %6.1f MiB/s   ratio %.2fx (aim >= 1.3x: %s)"
              % (ma, mib / ma, ma / mo, "met" if ma / mo >= 1.3 else "NOT met"))
        print("  curl --aws-sigv4   %7.3f s  %6.1f MiB/s   ratio %.2fx (aim >= 0.9x: %s)"
              % (mc, mib / mc, mc / mo, "met" if mc / mo >= 0.9 else "NOT met"))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        if rgw is not None:
            rgw.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
