"""The S3 server of the integration tests: Ceph RGW on 127.0.0.1, started by
tests/s3/rgw-start.sh (see there, and /work/shared/S3-TEST-SERVER.md).

The session fixture `s3` uses the server tests/check.sh started for the whole
run when VS_S3_ENDPOINT is set, and fails every test that asks for it when
check.sh reports the start failed (VS_S3_START_ERROR).  Otherwise, as when a
developer runs one test file by hand, it starts its own server and stops it
at the end of the session.

The helpers drive independent clients (Debian's /usr/bin/aws, s3cmd, curl
--aws-sigv4), never the code under test, so a test can check what the
daemon wrote, or write behind its back."""
import contextlib
import hashlib
import itertools
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import urllib.parse

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START = os.path.join(REPO, "tests", "s3", "rgw-start.sh")
STOP = os.path.join(REPO, "tests", "s3", "rgw-stop.sh")
AWS = "/usr/bin/aws"  # not whatever "aws" comes first on PATH
ENV_KEYS = ("VS_S3_ENDPOINT", "VS_S3_REGION", "VS_S3_BUCKET", "VS_S3_ACCESS_KEY",
            "VS_S3_SECRET_KEY", "VS_S3_ACCESS_KEY2", "VS_S3_SECRET_KEY2", "VS_S3_ACCESS_KEY3",
            "VS_S3_SECRET_KEY3", "VS_S3_PORT",
            "VS_S3_DIR")


def read_env_file(path):
    """The VS_S3_* lines of an s3.env written by rgw-start.sh."""
    out = {}
    with open(path) as f:
        for line in f:
            k, sep, v = line.strip().partition("=")
            if sep and k.startswith("VS_S3_"):
                out[k] = v
    return out


class S3Server:
    """One running RGW and the clients to talk to it."""

    def __init__(self, env, scratch):
        self.env = {k: env[k] for k in ENV_KEYS if env.get(k)}
        self.endpoint = env["VS_S3_ENDPOINT"]
        self.region = env["VS_S3_REGION"]
        self.bucket = env["VS_S3_BUCKET"]
        self.access_key = env["VS_S3_ACCESS_KEY"]
        self.secret_key = env["VS_S3_SECRET_KEY"]
        # A second key pair of the same S3 user: same bucket, other credentials.
        self.access_key2 = env.get("VS_S3_ACCESS_KEY2")
        self.secret_key2 = env.get("VS_S3_SECRET_KEY2")
        # A third key pair with a short, MinIO-style access key id.
        self.access_key3 = env.get("VS_S3_ACCESS_KEY3")
        self.secret_key3 = env.get("VS_S3_SECRET_KEY3")
        self.port = int(env["VS_S3_PORT"])
        self.dir = env.get("VS_S3_DIR")
        self.rgw_stopped = False
        self._scratch = scratch  # 0700, removed at session end
        self._token = os.urandom(3).hex()
        self._count = itertools.count(1)
        self._s3cfg = {}

    # ---- clients ------------------------------------------------------

    def client_env(self, access_key=None, secret_key=None):
        """The environment for aws and s3cmd: these credentials and nothing
        from the caller's ~/.aws, proxies or profile."""
        return {"PATH": "/usr/bin:/bin", "HOME": self._scratch, "LANG": "C.UTF-8",
                "AWS_ACCESS_KEY_ID": access_key or self.access_key,
                "AWS_SECRET_ACCESS_KEY": secret_key or self.secret_key,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "",
                # Fail fast when RGW is down instead of retrying for seconds.
                "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "2"}

    def aws(self, *args, access_key=None, secret_key=None, check=False, text=True,
            timeout=300, input=None):
        """/usr/bin/aws --endpoint-url ENDPOINT ARGS...; a CompletedProcess."""
        return subprocess.run([AWS, "--endpoint-url", self.endpoint] + [str(a) for a in args],
                              env=self.client_env(access_key, secret_key), capture_output=True,
                              text=text, check=check, timeout=timeout, input=input)

    def s3cmd(self, *args, access_key=None, secret_key=None, check=False, text=True,
              timeout=300, input=None):
        """s3cmd against the server, path-style, keys from a 0600 config file."""
        ak, sk = access_key or self.access_key, secret_key or self.secret_key
        cfg = self._s3cfg.get((ak, sk))
        if cfg is None:
            cfg = os.path.join(self._scratch, "s3cfg-%d" % len(self._s3cfg))
            host = "127.0.0.1:%d" % self.port
            with open(os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\n"
                        "host_bucket = %s\nbucket_location = %s\nuse_https = False\n"
                        "signature_v2 = False\n" % (ak, sk, host, host, self.region))
            self._s3cfg[(ak, sk)] = cfg
        host = "127.0.0.1:%d" % self.port
        argv = ["s3cmd", "-c", cfg, "--no-ssl", "--host=" + host, "--host-bucket=" + host]
        return subprocess.run(argv + [str(a) for a in args], env=self.client_env(ak, sk),
                              capture_output=True, text=text, check=check, timeout=timeout,
                              input=input)

    def request(self, method, key="", data=None, headers=None, query=None,
                access_key=None, secret_key=None, timeout=60):
        """One raw SigV4 request with curl --aws-sigv4, for what the CLIs do
        not expose (If-None-Match, If-Match, bad payload hashes).  `headers`
        override the defaults, x-amz-content-sha256 included (the SHA-256 of
        the body; libcurl does not add it).  Returns (status, headers, body);
        status 0 when nothing answered."""
        data = data.encode() if isinstance(data, str) else data
        url = "%s/%s/%s" % (self.endpoint, self.bucket, urllib.parse.quote(key, safe="/-_.~"))
        if query:
            # Signed as written: sorted by name, values percent-encoded.
            url += "?" + "&".join("%s=%s" % (urllib.parse.quote(k, safe="-_.~"),
                                             urllib.parse.quote(str(v), safe="-_.~"))
                                  for k, v in sorted(query.items()))
        hdrs = {"x-amz-content-sha256": hashlib.sha256(data or b"").hexdigest()}
        hdrs.update(headers or {})
        with tempfile.TemporaryDirectory(dir=self._scratch) as t:
            hfile, bfile = os.path.join(t, "headers"), os.path.join(t, "body")
            argv = ["curl", "-sS"] + (["-I"] if method == "HEAD" else ["-X", method])
            argv += ["-o", bfile, "-D", hfile, "-w", "%{http_code}", "--max-time", str(timeout),
                    "--aws-sigv4", "aws:amz:%s:s3" % self.region,
                    "--user", "%s:%s" % (access_key or self.access_key,
                                         secret_key or self.secret_key)]
            for k, v in hdrs.items():
                argv += ["-H", "%s: %s" % (k, v)]
            if data is not None:
                dfile = os.path.join(t, "data")
                with open(dfile, "wb") as f:
                    f.write(data)
                argv += ["--data-binary", "@" + dfile]
            r = subprocess.run(argv + [url], capture_output=True, text=True,
                               timeout=timeout + 10)
            status = int(r.stdout.strip() or 0)
            rh = {}
            if os.path.exists(hfile):
                with open(hfile, errors="replace") as f:
                    for line in f:
                        k, sep, v = line.partition(":")
                        if sep:
                            rh[k.strip().lower()] = v.strip()
            body = b""
            if os.path.exists(bfile):
                with open(bfile, "rb") as f:
                    body = f.read()
            return status, rh, body

    # ---- objects ------------------------------------------------------

    def new_prefix(self, tag=None):
        """A key prefix no other test (or run) uses; no trailing "/".  None
        is a prefix of another: each has its own fixed-width counter."""
        tag = tag or os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1].split(" ")[0]
        tag = re.sub(r"[^A-Za-z0-9._-]+", "-", tag).strip("-.")[:48]
        p = "it-%s-%04d" % (self._token, next(self._count))
        return p + "-" + tag if tag else p

    def url(self, prefix=""):
        return "s3://%s/%s" % (self.bucket, prefix)

    def _s3api(self, *args, **kw):
        r = self.aws("s3api", *args, **kw)
        if r.returncode != 0:
            raise AssertionError("aws s3api %s: exit %d: %s" % (args[0], r.returncode,
                                                                 r.stderr.strip()))
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def list_keys(self, prefix=""):
        """Every key under prefix, sorted (the CLI follows continuation tokens)."""
        out = self._s3api("list-objects-v2", "--bucket", self.bucket, "--prefix", prefix,
                          "--output", "json")
        return sorted(o["Key"] for o in out.get("Contents") or [])

    def get(self, key):
        with tempfile.TemporaryDirectory(dir=self._scratch) as t:
            path = os.path.join(t, "obj")
            self._s3api("get-object", "--bucket", self.bucket, "--key", key, path)
            with open(path, "rb") as f:
                return f.read()

    def put(self, key, data):
        """Writes data (bytes or str) at key; the reply, e.g. {"ETag": '"..."'}."""
        with tempfile.TemporaryDirectory(dir=self._scratch) as t:
            path = os.path.join(t, "obj")
            with open(path, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
            return self._s3api("put-object", "--bucket", self.bucket, "--key", key,
                               "--body", path)

    def head(self, key):
        """HeadObject's reply (ETag quoted, ContentLength, ...), None on 404."""
        r = self.aws("s3api", "head-object", "--bucket", self.bucket, "--key", key)
        if r.returncode != 0 and "(404)" in r.stderr:
            return None
        if r.returncode != 0:
            raise AssertionError("aws s3api head-object: %s" % r.stderr.strip())
        return json.loads(r.stdout)

    def delete(self, key):
        self._s3api("delete-object", "--bucket", self.bucket, "--key", key)

    # ---- credentials for the daemon ---------------------------------------

    def creds_file(self, path, secret=None, owner=None, access_key=None):
        """Writes a credentials file in the daemon's format (mode 0600), with
        this server's key pair unless told otherwise; owner: a uid to chown it
        to (with that user's group), for user-mode tests.  Returns path."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with open(fd, "w") as f:
            os.fchmod(fd, 0o600)
            f.write("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n"
                    % (access_key or self.access_key, secret or self.secret_key))
            if owner is not None:
                try:
                    gid = pwd.getpwuid(owner).pw_gid
                except KeyError:
                    gid = -1
                os.fchown(fd, owner, gid)
        return path

    # ---- server down, server up ---------------------------------------

    def stop_rgw(self):
        """Stops radosgw only (mon and OSD keep the data): requests now fail."""
        self._script(STOP, "--rgw-only")
        self.rgw_stopped = True

    def start_rgw(self):
        """Starts radosgw again, same port, same data; returns once it answers."""
        self._script(START, "--restart-rgw")
        self.rgw_stopped = False

    @contextlib.contextmanager
    def rgw_down(self):
        """with s3.rgw_down(): ...  -- RGW is back afterwards, whatever happened."""
        self.stop_rgw()
        try:
            yield
        finally:
            self.start_rgw()

    def _script(self, script, flag):
        if not self.dir:
            pytest.fail("VS_S3_DIR is not set: cannot stop or start this S3 server")
        r = subprocess.run([script, flag, self.dir], capture_output=True, text=True,
                           timeout=180)
        if r.returncode != 0:
            raise AssertionError("%s %s: exit %d:\n%s%s" % (os.path.basename(script), flag,
                                                            r.returncode, r.stdout, r.stderr))


@pytest.fixture(scope="session")
def s3():
    """The S3 server: check.sh's (VS_S3_*), or one of our own for this session."""
    err = os.environ.get("VS_S3_START_ERROR")
    if err:
        pytest.fail("the S3 test server did not start (tests/check.sh):\n" + err,
                    pytrace=False)
    scratch = tempfile.mkdtemp(prefix="vs-s3c-")
    own = None
    try:
        if os.environ.get("VS_S3_ENDPOINT"):
            env = os.environ
        else:
            own = os.path.join(scratch, "rgw")
            r = subprocess.run([START, own], capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                pytest.fail("tests/s3/rgw-start.sh failed (exit %d):\n%s%s"
                            % (r.returncode, r.stdout, r.stderr), pytrace=False)
            env = read_env_file(os.path.join(own, "s3.env"))
        yield S3Server(env, scratch)
    finally:
        if own:
            subprocess.run([STOP, own], timeout=120)
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(autouse=True)
def s3_rgw_guard(request):
    """A test that stopped RGW and failed before starting it again must not
    take the tests after it down too."""
    srv = request.getfixturevalue("s3") if "s3" in request.fixturenames else None
    yield
    if srv is not None and srv.rgw_stopped:
        srv.start_rgw()
