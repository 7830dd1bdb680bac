"""AmendSession against lrsched-server as a real process (issue #18): an acknowledged amendment
is durable before the reply, like a step: SIGKILL right after the acknowledgement, restart on the
same SQLite data, and the amendment is there (schedule_revision, the record's amendments with
their reason, the values served from then on), round after round, while a client steps the
session between them.

The server process fixture is test_server_process.py's; the calls go through the generated gRPC
stubs (lrsched._proto), so this needs no client library beyond them.
"""
import json

import grpc
import pytest

from test_server_process import CALL_TIMEOUT, COSINE, Server

pb = pytest.importorskip("lrsched._proto").pb
pb_grpc = pytest.importorskip("lrsched._proto").pb_grpc


def stub_for(server):
    channel = grpc.insecure_channel(server.addr)
    return channel, pb_grpc.LrSchedulerStub(channel)


def lrs(session):
    return [g.lr for g in session.groups]


@pytest.fixture
def server(tmp_path):
    """A server process on fresh SQLite data holding session "job" (COSINE), stopped after."""
    s = Server(tmp_path / "data")
    try:
        s.start()
        channel, stub = stub_for(s)
        stub.CreateSession(pb.CreateSessionRequest(name="job", spec_json=json.dumps(COSINE)),
                           timeout=CALL_TIMEOUT)
        channel.close()
        yield s
    finally:
        s.close()


def test_acknowledged_amendment_survives_kill_9(server):
    channel, stub = stub_for(server)
    acked = []
    for rnd in range(3):
        for _ in range(4):
            stub.Step(pb.StepRequest(name="job"), timeout=CALL_TIMEOUT)
        if rnd == 1:  # one taking effect ahead: kept pending across the kill
            req = pb.AmendSessionRequest(
                name="job", reason=f"round {rnd}", at_epoch=4 * (rnd + 1) + 2,
                continue_with_json=json.dumps({"type": "ExponentialLR", "gamma": 0.9}))
        else:
            req = pb.AmendSessionRequest(name="job", reason=f"round {rnd}",
                                         scale=pb.Scale(factor=0.5 + rnd))
        reply = stub.AmendSession(req, timeout=CALL_TIMEOUT)
        acked.append(reply)
        channel.close()
        server.kill()  # SIGKILL right after the acknowledgement: no graceful flush
        server.start()
        channel, stub = stub_for(server)
        got = stub.GetSession(pb.GetSessionRequest(name="job"), timeout=CALL_TIMEOUT)
        assert got.revision == reply.session.revision
        assert got.schedule_revision == reply.session.revision
        assert lrs(got) == lrs(reply.session)
        history = stub.GetHistory(pb.GetHistoryRequest(name="job"), timeout=CALL_TIMEOUT)
        assert [a.reason for a in history.amendments] == [f"round {i}"
                                                          for i in range(rnd + 1)]
        assert history.amendments[-1].revision == reply.amendment.revision
        assert history.amendments[-1].at_epoch == reply.amendment.at_epoch
    # The pending continue_with took over where it was scheduled, after a restart.
    for _ in range(3):
        stub.Step(pb.StepRequest(name="job"), timeout=CALL_TIMEOUT)
    history = stub.GetHistory(pb.GetHistoryRequest(name="job"), timeout=CALL_TIMEOUT)
    assert all(a.applied for a in history.amendments)
    epochs = {e.epoch: e.groups[0].lr for e in history.epochs}
    at = acked[1].amendment.at_epoch
    # ExponentialLR from the lr served at `at` (round 0's scale folded in), before round 2's
    # scale (made at epoch 12).
    assert at + 1 < 12
    assert epochs[at + 1] == pytest.approx(epochs[at] * 0.9, rel=1e-12)
    channel.close()


def test_refused_amendment_leaves_the_server_serving(server):
    channel, stub = stub_for(server)
    stub.Step(pb.StepRequest(name="job"), timeout=CALL_TIMEOUT)
    bad = [
        (pb.AmendSessionRequest(name="job", scale=pb.Scale(factor=float("nan"))),
         grpc.StatusCode.INVALID_ARGUMENT, "scale.factor"),
        (pb.AmendSessionRequest(name="job", scale=pb.Scale(factor=0.5), at_epoch=0),
         grpc.StatusCode.FAILED_PRECONDITION, "at_epoch"),
        (pb.AmendSessionRequest(name="job", reparameterize_json='{"T_mux": 3}'),
         grpc.StatusCode.INVALID_ARGUMENT, "T_mux"),
        (pb.AmendSessionRequest(name="nope", scale=pb.Scale(factor=0.5)),
         grpc.StatusCode.NOT_FOUND, "nope"),
    ]
    for req, code, words in bad:
        with pytest.raises(grpc.RpcError) as e:
            stub.AmendSession(req, timeout=CALL_TIMEOUT)
        assert e.value.code() == code, e.value.details()
        assert words in e.value.details()
    assert server.proc.poll() is None
    r = stub.Step(pb.StepRequest(name="job"), timeout=CALL_TIMEOUT)
    assert r.advanced and r.session.revision == 3
    channel.close()
