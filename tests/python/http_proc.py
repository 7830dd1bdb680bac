"""The HTTP/JSON gateway's test helpers (test_http_api.py): an lrsched-server with
--http_listen on ports it picks itself, one HTTP request with urllib, Server-Sent Events read
line by line, test certificates. Not a test module (pytest collects test_*.py only).
"""
import json
import os
import pathlib
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

from ready import READY_TIMEOUT, wait_until_healthy

BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
SERVER_BIN = os.path.join(BIN_DIR, "server", "lrsched-server") if BIN_DIR else None
CALL_TIMEOUT = 10  # seconds per HTTP request


class Proc:
    """An lrsched-server with --http_listen=127.0.0.1:0: its gRPC address and HTTP port come
    from its log."""

    def __init__(self, tmp_path, *flags):
        self.log_path = tmp_path / "server.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [SERVER_BIN, "--listen=127.0.0.1:0", "--http_listen=127.0.0.1:0",
                 f"--data_dir={tmp_path / 'd'}", "--sqlite_synchronous=normal",
                 "--shutdown_grace=1s", *flags],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            while True:
                text = self.log()
                m = re.search(r"event=listening addr=(\S+)", text)
                h = re.search(r"event=http_listening port=(\d+)", text)
                if m and h:
                    break
                assert self.proc.poll() is None and time.monotonic() < deadline, text
                time.sleep(0.02)
            self.address = m.group(1)
            self.http_port = int(h.group(1))
            if "--tls_client_ca" not in " ".join(flags):
                wait_until_healthy(self.address, self.proc, deadline, log=self.log,
                                   what="lrsched-server",
                                   credentials=self._grpc_credentials(flags))
        except BaseException:
            self.proc.kill()
            self.proc.wait(30)
            raise

    @staticmethod
    def _grpc_credentials(flags):
        for f in flags:
            if f.startswith("--tls_cert="):
                ca = pathlib.Path(f.split("=", 1)[1]).parent / "ca.pem"
                import grpc
                return grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
        return None

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        """SIGTERM; the exit code (waits at most 10 s: shutdown must never hang on a client)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError("the server did not stop within 10 s of SIGTERM:\n" + self.log())


def call(base, method, path, body=None, *, token=None, data=None, headers=None, context=None):
    """One HTTP request; (status, parsed JSON body, headers). `body`: a value sent as JSON;
    `data`: raw bytes instead."""
    if body is not None:
        data = json.dumps(body).encode()
    h = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=CALL_TIMEOUT, context=context) as r:
            return r.status, json.loads(r.read() or b"null"), r.headers
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None, e.headers


def next_event(r):
    """The next event's fields ({"id": ..., "data": ..., "event": ...}); comments skipped."""
    fields = {}
    while True:
        line = r.readline()
        assert line, "the stream ended"
        line = line.decode().rstrip("\n")
        if line == "":
            if fields:
                return fields
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        fields[key] = value[1:] if value.startswith(" ") else value


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_certs(d):
    """A CA (ca.pem), a server certificate for 127.0.0.1 (server.pem, server.key) and a client
    certificate (client.pem, client.key) in directory `d`, with EC keys (fast to make)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "1", "-subj", "/CN=test-ca", "-keyout", "ca.key",
            "-out", "ca.pem", cwd=d)
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1"),
                     ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", *ec, "-subj", f"/CN={who}", "-keyout", f"{who}.key", "-out",
                f"{who}.csr", cwd=d)
        (d / f"{who}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", f"{who}.ext", "-out", f"{who}.pem",
                cwd=d)


def http_client_errors():
    import http.client
    return http.client.HTTPException
