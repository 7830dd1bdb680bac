"""lrsched-server's HTTP/JSON gateway (--http_listen) as a real process, called with urllib as a
client in any language would call it: every route of the contract (the comment at the top of
proto/lrsched/v1/lrsched.proto), every error class with its JSON body, bearer tokens and roles,
a session created over HTTP and stepped over gRPC and back (values bit-equal both ways), Watch as
Server-Sent Events (its stream bound, a vanished client, shutdown), and HTTPS with client
certificates. One server (with tokens) serves the module; shutdown and TLS start their own.
"""
import json
import os
import pathlib
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from ready import READY_TIMEOUT, wait_until_healthy

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
SERVER_BIN = os.path.join(BIN_DIR, "server", "lrsched-server") if BIN_DIR else None
if not BIN_DIR or not os.access(SERVER_BIN, os.X_OK):
    pytest.skip("no lrsched-server (set LRSCHED_BIN_DIR; run scripts/test.sh)",
                allow_module_level=True)

import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import lrsched  # noqa: E402

ADMIN = "admin-token-0123456789abcdef"
STEPPER = "stepper-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
COSINE = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9},
                                                        {"lr": 0.03}]},
          "scheduler": {"type": "CosineAnnealingLR", "T_max": 7, "eta_min": 0.001}}
STEP_LR = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
           "scheduler": {"type": "StepLR", "step_size": 2, "gamma": 0.5}}
PLATEAU = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
           "scheduler": {"type": "ReduceLROnPlateau", "patience": 0}}
CALL_TIMEOUT = 10  # seconds per HTTP request
MAX_WATCH = 2  # --http_max_watch_streams of the module's server


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


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("http_api")
    tokens = d / "tokens"
    tokens.write_text(f"{ADMIN} admin ops\n{STEPPER} stepper trainer\n{READER} reader viewer\n")
    p = Proc(d, f"--tokens_file={tokens}", f"--http_max_watch_streams={MAX_WATCH}",
             "--http_threads=4")
    p.base = f"http://127.0.0.1:{p.http_port}"
    try:
        yield p
    finally:
        assert p.stop() == 0, p.log()


@pytest.fixture(scope="module")
def grpc_client(srv):
    with lrsched.Client(srv.address, token=ADMIN, retry_timeout=5.0) as c:
        yield c


def call(base, method, path, body=None, *, token=ADMIN, data=None, headers=None, context=None):
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


def q(name):
    return urllib.parse.quote(name, safe="")


def create(srv, name, spec, labels=None, token=ADMIN):
    body = {"name": name, "spec_json": json.dumps(spec)}
    if labels:
        body["labels"] = labels
    return call(srv.base, "POST", "/v1/sessions", body, token=token)


def assert_error(result, http_status, code_name, *needles):
    status, body, _ = result
    assert status == http_status, result
    assert body["status"] == code_name and isinstance(body["code"], int), body
    for n in needles:
        assert n in body["message"], body


# --- every route ------------------------------------------------------------------------------

def test_session_routes_create_get_list_delete(srv):
    status, s, _ = create(srv, "h/crud/a", COSINE, {"team": "vision"})
    assert status == 200, s
    # protobuf's JSON mapping: lowerCamelCase, int64 as strings, defaults printed.
    assert s["name"] == "h/crud/a" and s["lastEpoch"] == "0" and s["revision"] == "1"
    assert s["schedulerType"] == "CosineAnnealingLR" and s["deterministic"] is True
    assert s["groups"][0] == {"lr": 0.1, "momentum": 0.9} and s["labels"] == {"team": "vision"}
    assert create(srv, "h/crud/a", COSINE, {"team": "vision"})[0] == 200  # a retried create
    assert create(srv, "h/crud/b", STEP_LR)[0] == 200
    # The name in the path: '/' as is or percent-encoded.
    for path in ("/v1/sessions/h/crud/a", "/v1/sessions/" + q("h/crud/a")):
        status, got, _ = call(srv.base, "GET", path + "?consistent=true")
        assert status == 200 and got == s, got
    status, lst, _ = call(srv.base, "GET", "/v1/sessions?name_prefix=h/crud/")
    assert [x["name"] for x in lst["sessions"]] == ["h/crud/a", "h/crud/b"]
    assert lst["nextPageToken"] == ""
    status, lst, _ = call(srv.base, "GET", "/v1/sessions?namePrefix=h/crud/&labels%5Bteam%5D=vision")
    assert [x["name"] for x in lst["sessions"]] == ["h/crud/a"], lst
    status, page, _ = call(srv.base, "GET", "/v1/sessions?name_prefix=h/crud/&page_size=1")
    assert [x["name"] for x in page["sessions"]] == ["h/crud/a"] and page["nextPageToken"]
    status, page2, _ = call(srv.base, "GET", "/v1/sessions?name_prefix=h/crud/&page_size=1"
                            "&page_token=" + q(page["nextPageToken"]))
    assert [x["name"] for x in page2["sessions"]] == ["h/crud/b"], page2
    assert_error(call(srv.base, "DELETE", "/v1/sessions/h/crud/b?if_revision=7"), 400,
                 "FAILED_PRECONDITION")
    assert call(srv.base, "DELETE", "/v1/sessions/h/crud/b?if_revision=1")[:2] == (200, {})
    assert_error(call(srv.base, "GET", "/v1/sessions/h/crud/b"), 404, "NOT_FOUND", "h/crud/b")
    assert_error(call(srv.base, "DELETE", "/v1/sessions/h/crud/b"), 404, "NOT_FOUND")


def test_created_over_http_stepped_over_grpc_and_back_bit_equal(srv, grpc_client):
    name = "h/mixed"
    assert create(srv, name, COSINE)[0] == 200
    for epoch in range(1, 9):
        if epoch % 2:
            r = grpc_client.step(name)
            want = [g.lr for g in r.session.groups]
        else:
            status, r, _ = call(srv.base, "POST", f"/v1/sessions/{name}:step",
                                {"ifEpoch": str(epoch - 1)})
            assert status == 200 and r["advanced"] is True, r
            assert r["session"]["lastEpoch"] == str(epoch)
            want = [g["lr"] for g in r["session"]["groups"]]
        # Whoever stepped, both sides read the same doubles, bit for bit.
        via_grpc = grpc_client.get_session(name)
        status, via_http, _ = call(srv.base, "GET", f"/v1/sessions/{name}")
        assert via_grpc.last_epoch == epoch == int(via_http["lastEpoch"])
        assert [g.lr for g in via_grpc.groups] == [g["lr"] for g in via_http["groups"]] == want
    # A retried step (if_epoch behind) changes nothing; the empty body is a plain step.
    status, r, _ = call(srv.base, "POST", f"/v1/sessions/{name}:step", {"if_epoch": 3})
    assert status == 200 and r["advanced"] is False and r["session"]["lastEpoch"] == "8"
    status, r, _ = call(srv.base, "POST", f"/v1/sessions/{name}:step", data=b"")
    assert status == 200 and r["advanced"] is True and r["session"]["lastEpoch"] == "9"
    # GetLR with query parameters: the same lookahead window as gRPC's.
    status, lr, _ = call(srv.base, "GET", f"/v1/sessions/{name}:lr?ahead=2&window=4")
    want = grpc_client.get_lr(name, ahead=2, window=4)
    assert status == 200 and int(lr["epoch"]) == want.epoch == 11
    assert [g["lr"] for g in lr["groups"]] == [g.lr for g in want.groups]
    assert [[g["lr"] for g in e["groups"]] for e in lr["window"]] == \
        [[g.lr for g in e.groups] for e in want.window]


def test_simulate_export_import(srv, grpc_client):
    status, sim, _ = call(srv.base, "POST", "/v1:simulate",
                          {"specJson": json.dumps(COSINE), "steps": "5"})
    want = grpc_client.simulate(COSINE, 5)
    assert status == 200 and sim["groups"] == 2 and sim["errorAtStep"] == "-1"
    assert sim["lr"] == [v for step in want.lr for v in step], (sim["lr"], want.lr)
    assert create(srv, "h/exp", STEP_LR)[0] == 200
    for _ in range(3):
        grpc_client.step("h/exp")
    status, exp, _ = call(srv.base, "GET", "/v1/sessions/h/exp:export")
    assert status == 200 and exp["session"]["lastEpoch"] == "3" and exp["stateJson"]
    status, imp, _ = call(srv.base, "POST", "/v1/sessions/h/imp:import",
                          {"name": "h/imp", "stateJson": exp["stateJson"]})
    assert status == 200 and imp["name"] == "h/imp" and imp["lastEpoch"] == "3", imp
    # It continues where the exported one stood, over either protocol.
    a = grpc_client.step("h/exp").session
    status, b, _ = call(srv.base, "POST", "/v1/sessions/h/imp:step", {})
    assert [g.lr for g in a.groups] == [g["lr"] for g in b["session"]["groups"]]


def test_amend_and_history(srv, grpc_client):
    assert create(srv, "h/amend", STEP_LR)[0] == 200
    call(srv.base, "POST", "/v1/sessions/h/amend:step", {})
    status, am, _ = call(srv.base, "POST", "/v1/sessions/h/amend:amend",
                         {"scale": {"factor": 0.5}, "reason": "http test", "dryRun": False})
    assert status == 200, am
    assert am["amendment"]["kind"] == "scale" and am["amendment"]["reason"] == "http test"
    status, hist, _ = call(srv.base, "GET", "/v1/sessions/h/amend:history?from_epoch=0&page_size=10")
    assert status == 200 and len(hist["amendments"]) == 1, hist
    assert [e["epoch"] for e in hist["epochs"]] == ["0", "1"]
    h = grpc_client.history("h/amend")
    assert [e["groups"][0]["lr"] for e in hist["epochs"]] == [e.groups[0].lr for e in h.epochs]


# --- errors -----------------------------------------------------------------------------------

def test_bad_bodies_name_the_field(srv):
    assert create(srv, "h/err", STEP_LR)[0] == 200
    step = "/v1/sessions/h/err:step"
    assert_error(call(srv.base, "POST", step, data=b"{not json"), 400, "INVALID_ARGUMENT",
                 "not JSON of lrsched.v1.StepRequest")
    assert_error(call(srv.base, "POST", step, {"bogus": 1}), 400, "INVALID_ARGUMENT", "bogus")
    assert_error(call(srv.base, "POST", step, {"ifEpoch": "soon"}), 400, "INVALID_ARGUMENT",
                 "if_epoch")
    assert_error(call(srv.base, "POST", step, {"name": "h/other"}), 400, "INVALID_ARGUMENT",
                 "name", "h/other")
    assert_error(call(srv.base, "GET", "/v1/sessions/h/err:lr?ahead=x"), 400, "INVALID_ARGUMENT",
                 "ahead")
    assert_error(call(srv.base, "GET", "/v1/sessions/h/err:lr?bogus=1"), 400, "INVALID_ARGUMENT",
                 "bogus")
    # The service's own validation, its message as over gRPC.
    assert_error(call(srv.base, "GET", "/v1/sessions?page_size=-1"), 400, "INVALID_ARGUMENT",
                 "page_size")
    bad_spec = {"name": "h/bad", "spec_json": "{\"optimizer\": 1, \"scheduler\": {}}"}
    assert_error(call(srv.base, "POST", "/v1/sessions", bad_spec), 400, "INVALID_ARGUMENT",
                 "optimizer")
    # At most 4 MiB, as over gRPC.
    status, body, _ = call(srv.base, "POST", step, data=b" " * (5 << 20))
    assert status == 413 and body["status"] == "RESOURCE_EXHAUSTED", body
    assert "too large" in body["message"]


def test_error_statuses(srv):
    assert create(srv, "h/codes", STEP_LR)[0] == 200
    assert create(srv, "h/plateau", PLATEAU)[0] == 200
    assert_error(create(srv, "h/codes", COSINE), 409, "ALREADY_EXISTS")
    assert_error(call(srv.base, "GET", "/v1/sessions/h/plateau:lr?ahead=1"), 400,
                 "FAILED_PRECONDITION")
    assert_error(call(srv.base, "GET", "/v1/sessions/h/none:lr"), 404, "NOT_FOUND", "h/none")
    assert_error(call(srv.base, "GET", "/v1/sessions/h/codes:bogus"), 404, "NOT_FOUND", ":bogus")
    assert_error(call(srv.base, "GET", "/v2/anything"), 404, "NOT_FOUND", "/v2/anything")
    status, body, headers = call(srv.base, "PUT", "/v1/sessions/h/codes", {})
    assert status == 405 and body["status"] == "UNIMPLEMENTED", body
    assert headers["Allow"] == "GET, DELETE"
    assert call(srv.base, "GET", "/v1:simulate")[0] == 405
    assert call(srv.base, "DELETE", "/v1/sessions")[0] == 405


def test_tokens_and_roles(srv):
    assert_error(call(srv.base, "GET", "/v1/sessions", token=None), 401, "UNAUTHENTICATED")
    assert_error(call(srv.base, "GET", "/v1/sessions", token="wrong-token-0123456789abcdef"),
                 401, "UNAUTHENTICATED")
    assert call(srv.base, "GET", "/v1/sessions", token=READER)[0] == 200
    assert create(srv, "h/auth", STEP_LR)[0] == 200
    assert_error(call(srv.base, "POST", "/v1/sessions/h/auth:step", {}, token=READER), 403,
                 "PERMISSION_DENIED")
    assert call(srv.base, "POST", "/v1/sessions/h/auth:step", {}, token=STEPPER)[0] == 200
    assert_error(create(srv, "h/auth2", STEP_LR, token=STEPPER), 403, "PERMISSION_DENIED")
    # The watch refuses before it streams: a plain JSON error.
    assert_error(call(srv.base, "GET", "/v1/sessions/h/auth:watch", token=None), 401,
                 "UNAUTHENTICATED")


# --- Watch as Server-Sent Events --------------------------------------------------------------

def open_watch(srv, name, token=ADMIN):
    req = urllib.request.Request(f"{srv.base}/v1/sessions/{name}:watch",
                                 headers={"Authorization": f"Bearer {token}"})
    r = urllib.request.urlopen(req, timeout=CALL_TIMEOUT)
    assert r.headers["Content-Type"].startswith("text/event-stream")
    return r


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


def test_watch_streams_steps_and_ends_when_deleted(srv, grpc_client):
    assert create(srv, "h/watch", COSINE)[0] == 200
    r = open_watch(srv, "h/watch")
    try:
        first = next_event(r)
        s = json.loads(first["data"])
        assert s["name"] == "h/watch" and first["id"] == s["revision"] == "1"
        stepped = grpc_client.step("h/watch").session
        ev = next_event(r)
        s = json.loads(ev["data"])
        assert s["lastEpoch"] == "1" and ev["id"] == "2"
        assert [g["lr"] for g in s["groups"]] == [g.lr for g in stepped.groups]
        call(srv.base, "DELETE", "/v1/sessions/h/watch")
        end = next_event(r)
        assert end["event"] == "end" and json.loads(end["data"])["status"] == "NOT_FOUND"
    finally:
        r.close()
    assert_error(call(srv.base, "GET", "/v1/sessions/h/nowhere:watch"), 404, "NOT_FOUND")


def test_watch_streams_are_bounded_and_freed_when_the_client_goes(srv):
    assert create(srv, "h/bound", STEP_LR)[0] == 200
    streams = [open_watch(srv, "h/bound") for _ in range(MAX_WATCH)]
    try:
        for r in streams:
            next_event(r)
        assert_error(call(srv.base, "GET", "/v1/sessions/h/bound:watch"), 429,
                     "RESOURCE_EXHAUSTED", "--http_max_watch_streams")
        # Unary calls still have their threads.
        assert call(srv.base, "GET", "/v1/sessions/h/bound")[0] == 200
        streams.pop().close()
        # The server notices the vanished client at its next keep-alive comment (every 2 s).
        deadline = time.monotonic() + 10
        while True:
            try:
                r = open_watch(srv, "h/bound")
                break
            except urllib.error.HTTPError as e:
                assert e.code == 429
                assert time.monotonic() < deadline, "the closed stream's slot was never freed"
                time.sleep(0.2)
        streams.append(r)
        next_event(r)
    finally:
        for r in streams:
            r.close()


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


# --- HTTPS ------------------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_https_with_client_certificates(tmp_path):
    d = tmp_path
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


def http_client_errors():
    import http.client
    return http.client.HTTPException
