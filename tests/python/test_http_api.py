"""lrsched-server's HTTP/JSON gateway (--http_listen) as a real process, called with urllib as a
client in any language would call it: every route of the contract (the comment at the top of
proto/lrsched/v1/lrsched.proto), every error class with its JSON body, bearer tokens and roles,
a session created over HTTP and stepped over gRPC and back (values bit-equal both ways), the
access log and metrics, Watch as Server-Sent Events (its stream bound, a vanished client, a
deadline). One server, with tokens, serves the module; test_http_process.py has shutdown and
HTTPS.
"""
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import http_proc
from http_proc import CALL_TIMEOUT, Proc, next_event
from ready import READY_TIMEOUT

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
MAX_WATCH = 2  # --http_max_watch_streams of the module's server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("http_api")
    tokens = d / "tokens"
    tokens.write_text(f"{ADMIN} admin ops\n{STEPPER} stepper trainer\n{READER} reader viewer\n")
    p = Proc(d, f"--tokens_file={tokens}", f"--http_max_watch_streams={MAX_WATCH}",
             "--http_threads=4", "--metrics_listen=127.0.0.1:0")
    p.base = f"http://127.0.0.1:{p.http_port}"
    try:
        yield p
    finally:
        assert p.stop() == 0, p.log()


@pytest.fixture(scope="module")
def grpc_client(srv):
    with lrsched.Client(srv.address, token=ADMIN, retry_timeout=5.0) as c:
        yield c


def call(base, method, path, body=None, *, token=ADMIN, **kw):
    """http_proc.call with the admin token by default."""
    return http_proc.call(base, method, path, body, token=token, **kw)


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
    # The access log tells the HTTP calls (and their client) from the gRPC ones, and a gRPC
    # client cannot pass itself off as one by sending the gateway's header.
    import grpc
    with grpc.insecure_channel(srv.address) as ch:
        step = ch.unary_unary("/lrsched.v1.LrScheduler/Step")  # raw bytes both ways
        step(b"\x0a" + bytes([len(name)]) + name.encode(),
             metadata=(("authorization", f"Bearer {ADMIN}"), ("x-forwarded-for", "6.6.6.6")),
             timeout=CALL_TIMEOUT)
    deadline = time.monotonic() + 5  # the log is written by a thread of its own
    while True:
        steps = [line for line in srv.log().splitlines()
                 if "event=access method=Step session=h/mixed " in line]
        if len(steps) >= 11 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert ["via=http peer=127.0.0.1 " in line for line in steps] == [
        epoch % 2 == 0 for epoch in range(1, 9)] + [True, True, False], steps
    assert not any("6.6.6.6" in line for line in steps)
    # GetLR with query parameters: the same lookahead window as gRPC's.
    status, lr, _ = call(srv.base, "GET", f"/v1/sessions/{name}:lr?ahead=2&window=4")
    want = grpc_client.get_lr(name, ahead=2, window=4)
    assert status == 200 and int(lr["epoch"]) == want.epoch == 12
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


def test_keep_alive_calls_do_not_wait_for_delayed_acks(srv):
    """A reply's headers and body go out in separate writes: without TCP_NODELAY each call on a
    kept-alive connection waited ~40 ms for the client's delayed ACK (Nagle). The median of a
    few calls tells that stall (>= 40 ms each) from any load spike, with a wide margin."""
    import http.client
    assert create(srv, "h/nagle", STEP_LR)[0] == 200
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=CALL_TIMEOUT)
    took = []
    try:
        for _ in range(15):
            t0 = time.monotonic()
            conn.request("GET", "/v1/sessions/h/nagle:lr",
                         headers={"Authorization": f"Bearer {ADMIN}"})
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            took.append(time.monotonic() - t0)
    finally:
        conn.close()
    assert sorted(took)[len(took) // 2] < 0.02, took


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
    wait_streams_closed(srv)  # for the tests after this one


def test_grpc_timeout_header_is_the_calls_deadline(srv):
    assert create(srv, "h/deadline", STEP_LR)[0] == 200
    req = urllib.request.Request(f"{srv.base}/v1/sessions/h/deadline:watch",
                                 headers={"Authorization": f"Bearer {ADMIN}",
                                          "Grpc-Timeout": "300m"})
    with urllib.request.urlopen(req, timeout=CALL_TIMEOUT) as r:
        next_event(r)
        end = next_event(r)
    assert end["event"] == "end" and json.loads(end["data"])["status"] == "DEADLINE_EXCEEDED"
    assert_error(call(srv.base, "GET", "/v1/sessions/h/deadline", headers={"Grpc-Timeout": "soon"}),
                 400, "INVALID_ARGUMENT", "Grpc-Timeout")
    assert call(srv.base, "GET", "/v1/sessions/h/deadline", headers={"Grpc-Timeout": "5S"})[0] == 200


def scrape(srv):
    """The module server's metrics, {"name{labels}": value}."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not (m := re.search(r"event=metrics_listening port=(\d+)", srv.log())):
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.02)
    url = f"http://127.0.0.1:{m.group(1)}/metrics"
    text = urllib.request.urlopen(url, timeout=CALL_TIMEOUT).read().decode()
    return {k: float(v) for k, v in re.findall(r"^(\S+) (\S+)$", text, re.M)}


def wait_streams_closed(srv):
    """Until the server has let go of every Watch stream (a client's close shows at the
    stream's next keep-alive comment)."""
    deadline = time.monotonic() + 10
    while scrape(srv)["lrsched_http_watch_streams"] != 0:
        assert time.monotonic() < deadline, "a closed stream stayed open on the server"
        time.sleep(0.1)


def test_metrics_count_http_requests_and_streams(srv):
    wait_streams_closed(srv)
    assert create(srv, "h/metrics", STEP_LR)[0] == 200
    before = scrape(srv)
    call(srv.base, "GET", "/v1/sessions/h/metrics")
    call(srv.base, "GET", "/v1/sessions/h/none")
    with open_watch(srv, "h/metrics") as r:
        next_event(r)
        during = scrape(srv)
    assert during["lrsched_http_requests_total"] == before["lrsched_http_requests_total"] + 2
    assert during["lrsched_http_errors_total"] == before["lrsched_http_errors_total"] + 1
    assert during["lrsched_http_watch_streams"] == 1
    # The calls themselves are counted by the service, as gRPC calls are.
    key = 'lrsched_rpc_total{method="lrsched.v1.LrScheduler/GetSession",code="NOT_FOUND"}'
    assert during[key] >= 1
