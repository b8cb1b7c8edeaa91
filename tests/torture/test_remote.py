"""The remote misbehaves: RGW behind a fault proxy that stops listening,
delays, drips, resets mid-body, answers 500/503 storms, 412 loops, 200s for
writes that never landed, wrong ETags; RGW itself stopped and started (only
when the run owns it); a second device writing the same vault."""
import os
import random
import threading
import time

import pytest

from conftest import tally, verdict, wait_for
from test_kill import ctl_traffic

LATEST = r"/vault\.tar\.age$"


def faults(rnd):
    """(name, kind, params): one of everything the proxy can do to a request."""
    return [
        ("down", None, {}),
        ("delay", "delay", dict(seconds=rnd.uniform(1, 4))),
        ("drip", "drip", dict(rate=4000, pad=3000)),
        ("reset mid-body", "reset_mid_body", {}),
        ("500 storm", "status", dict(code=500)),
        ("503 storm", "status", dict(code=503)),
        ("412 loop", "status", dict(code=412, method="PUT", path=LATEST)),
        ("200 for a PUT that never landed", "put_200_garbage", dict(method="PUT", path=LATEST)),
        ("empty 200 for a PUT that never landed", "put_200_empty",
         dict(method="PUT", path=LATEST)),
        ("PUT reply without ETag", "put_no_etag", dict(method="PUT", path=LATEST)),
        ("reply cut mid-headers", "close_mid_headers", {}),
        ("wrong ETag", "wrong_etag", dict(method="PUT", path=LATEST)),
        ("write lands, reply 500", "forward_then_500", dict(method="PUT", path=LATEST)),
        ("unparseable status line", "bad_status", {}),
    ]


def test_proxy_faults(envs, s3, rnd, scale):
    e = envs(s3v=s3, conf="Interval 2s\nHeadPollInterval 1s\nHeadPollMaxInterval 2s\n")
    proxy, port = e.proxy, e.proxy.port
    e.start()
    w = e.init()
    w.start()
    stop = threading.Event()
    side = ctl_traffic(e, random.Random(rnd.random()), stop)
    schedule = faults(rnd)
    rnd.shuffle(schedule)
    if scale.long:
        schedule = schedule * 4
        rnd.shuffle(schedule)
    held = scale.pick((0.5, 1.2), (3.0, 12.0))
    for name, kind, params in schedule:
        if kind is None:
            proxy.stop()
        else:
            proxy.set_fault(kind, **params)
        time.sleep(rnd.uniform(*held))
        if kind is None:
            proxy.start(port)
        else:
            proxy.clear()
        tally(faults=1, outages=1 if name in ("down", "500 storm", "503 storm") else 0)
        # Give the daemon a moment to notice the way back, then look.
        time.sleep(0.5)
        v = e.vstate()
        if v and v["state"] == "conflict":
            if name != "412 loop":
                e.problems.append("after '%s' the vault is in conflict, though no other "
                                  "device wrote it (last error %r)"
                                  % (name, v.get("last_error")))
            # Resolved as a user would, so the next fault meets a healthy vault.
            with w.paused():
                e.resolving()
                r = e.ctl("push", "v", "--force", timeout=120)
                if r.returncode != 0:
                    e.problems.append("push --force after '%s': %d %r"
                                      % (name, r.returncode, (r.stdout + r.stderr).strip()))
    stop.set()
    side.join(150)
    verdict(e, final_bound=90, unasked_within=20)


def test_rgw_stopped_and_started(envs, s3, rnd, scale):
    """The real RGW goes away and comes back.  Only a run that owns its RGW
    (tests/check.sh starts one per run) may stop it."""
    if os.environ.get("VS_TORTURE_RGW_STOPPABLE") != "1":
        pytest.skip("the S3 server is shared: set VS_TORTURE_RGW_STOPPABLE=1 on a run that "
                    "owns it")
    e = envs(s3v=s3, conf="Interval 2s\nHeadPollInterval 1s\n")
    e.start()
    w = e.init()
    w.start()
    for _ in range(scale.pick(1, 5)):
        time.sleep(rnd.uniform(0.5, 2))
        with s3.rgw_down():
            time.sleep(rnd.uniform(*scale.pick((2, 4), (5, 30))))
        tally(outages=1, faults=1)
    verdict(e, final_bound=120, unasked_within=20)


def test_second_device(envs, s3, rnd, scale):
    """Another device (other credentials) replaces the latest now and then
    while this one keeps changing; the daemon must notice, keep its own
    version under conflicts/ and write nothing over theirs until a pull or
    push --force, which the test then does at random."""
    e = envs(s3v=s3, conf="Interval 2s\nHeadPollInterval 1s\nHeadPollMaxInterval 2s\n")
    e.start()
    w = e.init()
    w.start()
    wait_for(lambda: (lambda v: v and v["pushed"])(e.vstate()), timeout=30,
             what="the first push")
    for i in range(scale.pick(2, 25)):
        time.sleep(rnd.uniform(0.5, 2.5))
        theirs = e.other_device_write({"laptop-%d" % i: rnd.randbytes(rnd.randint(10, 5000)),
                                       "shared": rnd.randbytes(100)})
        tally(faults=1)
        try:
            wait_for(lambda: (lambda v: v and v["state"] == "conflict")(e.vstate()),
                     timeout=20, interval=0.2, what="the conflict noticed")
        except AssertionError:
            e.problems.append("write %d of the other device not noticed in 20 s: %s"
                              % (i, e.vstate()))
        time.sleep(rnd.uniform(0.2, 1.5))	# our changes go on meanwhile
        with w.paused():
            e.resolving()
            if rnd.random() < 0.5:
                r = e.ctl("pull", "v", "--passphrase-file", e.passfile, timeout=120)
                if r.returncode != 0:
                    e.problems.append("pull %d: %d %r" % (i, r.returncode,
                                                          (r.stdout + r.stderr).strip()))
                else:
                    got = w.resync()
                    if got != theirs:
                        e.problems.append("pull %d: the vault is not the other device's "
                                          "tree" % i)
            else:
                r = e.ctl("push", "v", "--force", timeout=120)
                if r.returncode != 0:
                    e.problems.append("push --force %d: %d %r"
                                      % (i, r.returncode, (r.stdout + r.stderr).strip()))
    verdict(e, final_bound=60, unasked_within=20)
