"""What the benchmarks that need S3 share: a throwaway Ceph RGW on 127.0.0.1
(tests/s3/rgw-start.sh) and a credentials file for the daemon."""
import os
import shutil
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RGW:
    def __init__(self, work):
        self.dir = tempfile.mkdtemp(prefix="vs-bench-rgw-")
        shutil.rmtree(self.dir)	# rgw-start.sh makes it, and marks it as its own
        r = subprocess.run([os.path.join(REPO, "tests/s3/rgw-start.sh"), self.dir],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("rgw-start.sh failed:\n" + r.stdout + r.stderr)
        self.env = {}
        with open(os.path.join(self.dir, "s3.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                self.env[k] = v
        self.creds = os.path.join(work, "s3.env")
        fd = os.open(self.creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, ("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n" % (
            self.env["VS_S3_ACCESS_KEY"], self.env["VS_S3_SECRET_KEY"])).encode())
        os.close(fd)

    def vault_conf(self, prefix):
        """The Remote lines of a vault on this server."""
        return ("  Remote s3://%s/%s\n  Endpoint %s\n  Region %s\n  PathStyle yes\n"
                "  CredentialsFile %s\n" % (self.env["VS_S3_BUCKET"], prefix,
                                            self.env["VS_S3_ENDPOINT"],
                                            self.env["VS_S3_REGION"], self.creds))

    def stop(self):
        subprocess.run([os.path.join(REPO, "tests/s3/rgw-stop.sh"), self.dir],
                       capture_output=True)
