"""Interop between vs-age (vaultsync's age implementation) and age(1).

Run: /usr/bin/python3 -m pytest tests/integration/test_age_interop.py
Binaries come from $VS_BUILD (default <repo>/build); age and age-keygen from
/usr/bin.  age reads passphrases only from a terminal, so those cases drive
it through a pseudo-terminal.
"""

import os
import subprocess
from pathlib import Path

import pytest

from conftest import pty_run

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("VS_BUILD", REPO / "build"))
VS_AGE = BUILD / "vs-age"
AGE = "/usr/bin/age"
AGE_KEYGEN = "/usr/bin/age-keygen"
CHUNK = 65536
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17]

pytestmark = [
    pytest.mark.skipif(not VS_AGE.exists(), reason=f"{VS_AGE} not built (make build/vs-age)"),
    pytest.mark.skipif(not os.path.exists(AGE), reason="age(1) is not installed"),
]


def run(argv, data=b"", check=True):
    p = subprocess.run([str(a) for a in argv], input=data, capture_output=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}: {p.stderr.decode(errors='replace')}")
    return p


def payload(n, seed=1):
    # Deterministic, incompressible-looking bytes without depending on /dev/urandom.
    out = bytearray()
    x = seed
    while len(out) < n:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out += x.to_bytes(8, "little")
    return bytes(out[:n])


def age_tty(args, passphrase, timeout=60):
    """Run age with a pty as its terminal, answering its passphrase prompts."""
    return pty_run([AGE] + list(args), [passphrase] * 2, timeout=timeout)


@pytest.fixture
def keypair(tmp_path):
    """An identity from age-keygen and its recipient."""
    idf = tmp_path / "age-key.txt"
    run([AGE_KEYGEN, "-o", idf])
    rcpt = run([AGE_KEYGEN, "-y", idf]).stdout.decode().strip()
    return idf, rcpt


@pytest.fixture
def vs_keypair(tmp_path):
    """An identity from vs-age -k and its recipient."""
    idf = tmp_path / "vs-key.txt"
    idf.write_bytes(run([VS_AGE, "-k"]).stdout)
    rcpt = run([VS_AGE, "-y", "-i", idf]).stdout.decode().strip()
    return idf, rcpt


@pytest.mark.parametrize("size", SIZES)
def test_age_decrypts_vs_age_x25519(tmp_path, keypair, size):
    idf, rcpt = keypair
    data = payload(size, size + 1)
    ct = run([VS_AGE, "-e", "-r", rcpt], data).stdout
    assert ct.startswith(b"age-encryption.org/v1\n")
    assert run([AGE, "-d", "-i", idf], ct).stdout == data


@pytest.mark.parametrize("size", SIZES)
def test_vs_age_decrypts_age_r(tmp_path, keypair, size):
    idf, rcpt = keypair
    data = payload(size, size + 2)
    ct = run([AGE, "-e", "-r", rcpt], data).stdout
    assert run([VS_AGE, "-d", "-i", idf], ct).stdout == data


def test_vs_age_decrypts_age_recipients_file(tmp_path, keypair, vs_keypair):
    idf, rcpt = keypair
    vidf, vrcpt = vs_keypair
    rfile = tmp_path / "recipients.txt"
    rfile.write_text(f"# two recipients\n{rcpt}\n\n{vrcpt}\n")
    data = payload(2 * CHUNK + 5, 3)
    ct = run([AGE, "-e", "-R", rfile], data).stdout
    assert run([VS_AGE, "-d", "-i", idf], ct).stdout == data
    assert run([VS_AGE, "-d", "-i", vidf], ct).stdout == data
    # And the same file the other way round.
    ct = run([VS_AGE, "-e", "-R", rfile], data).stdout
    assert run([AGE, "-d", "-i", idf], ct).stdout == data
    assert run([AGE, "-d", "-i", vidf], ct).stdout == data


def test_vs_age_decrypts_age_passphrase(tmp_path):
    data = payload(CHUNK + 100, 4)
    (tmp_path / "plain").write_bytes(data)
    (tmp_path / "pass").write_text("correct horse battery staple\n")
    rc, out = age_tty(["-p", "-o", tmp_path / "ct.age", tmp_path / "plain"],
                      "correct horse battery staple")
    assert rc == 0, out
    ct = (tmp_path / "ct.age").read_bytes()
    assert b"\n-> scrypt " in ct
    assert run([VS_AGE, "-d", "-p", tmp_path / "pass"], ct).stdout == data
    # Wrong passphrase: a clear error, no output.
    (tmp_path / "bad").write_text("correct horse battery stapler\n")
    p = run([VS_AGE, "-d", "-p", tmp_path / "bad"], ct, check=False)
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode() == "vs-age: incorrect passphrase\n"


@pytest.mark.parametrize("logn", [10, None])
def test_age_decrypts_vs_age_passphrase(tmp_path, logn):
    data = payload(3 * CHUNK, 5)
    (tmp_path / "pass").write_text("hunter2 hunter2\n")
    argv = [VS_AGE, "-e", "-p", tmp_path / "pass"] + (["-N", str(logn)] if logn else [])
    ct = run(argv, data).stdout
    assert f" {logn or 18}\n".encode() in ct.split(b"\n---")[0]
    (tmp_path / "ct.age").write_bytes(ct)
    rc, out = age_tty(["-d", "-o", tmp_path / "out", tmp_path / "ct.age"], "hunter2 hunter2")
    assert rc == 0, out
    assert (tmp_path / "out").read_bytes() == data


def test_vs_age_identity_usable_by_age(tmp_path, vs_keypair):
    idf, rcpt = vs_keypair
    text = idf.read_text()
    assert text.startswith("# created: ")
    assert f"# public key: {rcpt}\n" in text
    assert run([AGE_KEYGEN, "-y", idf]).stdout.decode().strip() == rcpt
    data = payload(1000, 6)
    ct = run([AGE, "-e", "-r", rcpt], data).stdout
    assert run([AGE, "-d", "-i", idf], ct).stdout == data
    assert run([VS_AGE, "-d", "-i", idf], ct).stdout == data


def test_age_keygen_identity_usable_by_vs_age(tmp_path, keypair):
    idf, rcpt = keypair
    assert run([VS_AGE, "-y", "-i", idf]).stdout.decode().strip() == rcpt
    data = payload(1000, 7)
    ct = run([VS_AGE, "-e", "-r", rcpt], data).stdout
    assert run([VS_AGE, "-d", "-i", idf], ct).stdout == data


def test_recipient_output_matches_age_keygen(tmp_path):
    for i in range(5):
        idf = tmp_path / f"k{i}.txt"
        run([AGE_KEYGEN, "-o", idf])
        assert run([VS_AGE, "-y", "-i", idf]).stdout == run([AGE_KEYGEN, "-y", idf]).stdout
        vidf = tmp_path / f"v{i}.txt"
        vidf.write_bytes(run([VS_AGE, "-k"]).stdout)
        assert run([VS_AGE, "-y", "-i", vidf]).stdout == run([AGE_KEYGEN, "-y", vidf]).stdout


def test_failures_are_reported_and_write_nothing_unauthenticated(tmp_path, keypair):
    idf, rcpt = keypair
    data = payload(2 * CHUNK + 10, 8)
    ct = bytearray(run([AGE, "-e", "-r", rcpt], data).stdout)
    # Corrupt the last chunk: the first two (authenticated) chunks come out, then an error.
    ct[-3] ^= 0x40
    p = run([VS_AGE, "-d", "-i", idf], bytes(ct), check=False)
    assert p.returncode == 1
    assert p.stderr.decode() == "vs-age: chunk 2 failed to authenticate\n"
    assert p.stdout == data[: 2 * CHUNK]
    # Corrupt the header MAC: nothing at all comes out.
    ct = bytearray(run([AGE, "-e", "-r", rcpt], data).stdout)
    i = ct.index(b"\n--- ") + 6
    ct[i] = ord("A") if ct[i] != ord("A") else ord("B")
    p = run([VS_AGE, "-d", "-i", idf], bytes(ct), check=False)
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode() == "vs-age: header MAC mismatch\n"
    # Truncated: error, never a silent short file.
    ct = run([AGE, "-e", "-r", rcpt], data).stdout
    p = run([VS_AGE, "-d", "-i", idf], ct[:-1], check=False)
    assert p.returncode == 1 and p.stderr.startswith(b"vs-age: ")
    # age's ASCII armor is not the binary format.
    armored = run([AGE, "-e", "-a", "-r", rcpt], b"x").stdout
    p = run([VS_AGE, "-d", "-i", idf], armored, check=False)
    assert p.returncode == 1
    assert p.stderr.decode() == "vs-age: armored (PEM) age files are not supported\n"
    # A foreign identity.
    other = tmp_path / "other.txt"
    run([AGE_KEYGEN, "-o", other])
    p = run([VS_AGE, "-d", "-i", other], ct, check=False)
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode() == "vs-age: no identity matched any recipient stanza\n"


def test_work_factor_cap(tmp_path):
    (tmp_path / "pass").write_text("pw\n")
    ct = run([VS_AGE, "-e", "-p", tmp_path / "pass", "-N", "12"], b"x").stdout
    p = run([VS_AGE, "-d", "-p", tmp_path / "pass", "-M", "11"], ct, check=False)
    assert p.returncode == 1
    assert p.stderr.decode() == "vs-age: scrypt work factor 2^12 exceeds the limit 2^11\n"
    assert run([VS_AGE, "-d", "-p", tmp_path / "pass", "-M", "12"], ct).stdout == b"x"
