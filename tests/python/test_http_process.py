"""lrsched-server's HTTP/JSON gateway as a process, beyond its routes (test_http_api.py): SIGTERM
with a Watch stream open (the stream ends with UNAVAILABLE, the server exits at once), and HTTPS
with the gRPC port's certificate and client-certificate check. Each test starts its own server.
"""
import json
import os
import shutil
import signal
import subprocess
import ssl
import time
import urllib.error
import urllib.request

import pytest

from http_proc import (CALL_TIMEOUT, SERVER_BIN, Proc, call, http_client_errors, make_certs,
                       next_event)

if not SERVER_BIN or not os.access(SERVER_BIN, os.X_OK):
    pytest.skip("no lrsched-server (set LRSCHED_BIN_DIR; run scripts/test.sh)",
                allow_module_level=True)

STEP_LR = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
           "scheduler": {"type": "StepLR", "step_size": 2, "gamma": 0.5}}


def test_shutdown_ends_open_streams(tmp_path):
    p = Proc(tmp_path)  # no tokens: every call allowed
    base = f"http://127.0.0.1:{p.http_port}"
    try:
        assert call(base, "POST", "/v1/sessions",
                    {"name": "s", "spec_json": json.dumps(STEP_LR)}, token=None)[0] == 200
        r = urllib.request.urlopen(f"{base}/v1/sessions/s:watch", timeout=CALL_TIMEOUT)
        next_event(r)
        t0 = time.monotonic()
        p.proc.send_signal(signal.SIGTERM)
        end = next_event(r)
        assert end["event"] == "end" and json.loads(end["data"])["status"] == "UNAVAILABLE"
        assert p.stop() == 0
        assert time.monotonic() - t0 < 5, "shutdown waited on the open stream"
        r.close()
    finally:
        p.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_https_with_client_certificates(tmp_path):
    d = tmp_path
    make_certs(d)
    p = Proc(d, f"--tls_cert={d / 'server.pem'}", f"--tls_key={d / 'server.key'}",
             f"--tls_client_ca={d / 'ca.pem'}")
    base = f"https://127.0.0.1:{p.http_port}"
    try:
        ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
        ctx.load_cert_chain(str(d / "client.pem"), str(d / "client.key"))
        status, body, _ = call(base, "POST", "/v1/sessions",
                               {"name": "t", "spec_json": json.dumps(STEP_LR)}, token=None,
                               context=ctx)
        assert status == 200 and body["name"] == "t"
        assert call(base, "GET", "/v1/sessions/t", token=None, context=ctx)[0] == 200
        # Without a client certificate the handshake fails; plain HTTP gets no answer.
        no_cert = ssl.create_default_context(cafile=str(d / "ca.pem"))
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            call(base, "GET", "/v1/sessions/t", token=None, context=no_cert)
        with pytest.raises((urllib.error.URLError, ConnectionError, http_client_errors())):
            call(f"http://127.0.0.1:{p.http_port}", "GET", "/v1/sessions/t", token=None)
        assert p.stop() == 0
    finally:
        p.stop()


def test_bad_http_flags_fail_to_start(tmp_path):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        for flags, says in ((["--http_listen=nonsense"], "--http_listen: expected HOST:PORT"),
                            (["--http_listen=127.0.0.1:99999"], "--http_listen"),
                            ([f"--http_listen=127.0.0.1:{taken}"], "--http_listen: cannot listen"),
                            (["--http_listen=127.0.0.1:0", "--http_threads=0"], "--http_threads")):
            out = subprocess.run([SERVER_BIN, "--listen=127.0.0.1:0", f"--data_dir={tmp_path / 'd'}",
                                  *flags], capture_output=True, text=True, timeout=CALL_TIMEOUT)
            assert out.returncode == 1 and says in out.stderr, (flags, out.stderr)
