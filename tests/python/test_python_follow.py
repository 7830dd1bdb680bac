"""RemoteLRScheduler(follow=True): ranks that read but never step, against a real lrsched-server.

As the C++ client's RemoteSchedule follow (client/remote_schedule.h): a follower's step() makes
no Step RPC and reads one lookahead window (GetLR) per `window` steps, and its param groups hold
exactly the stepping rank's values; it may run ahead of the session (past its window too) but
behind it reads the session's record (GetHistory); for ReduceLROnPlateau each step() reads the
current values.

Needs LRSCHED_BIN_DIR (the build directory); one server for the module; runs in about a second.
"""
import itertools
import math

import pytest

from pyclient_server import skip_reason

if skip_reason():
    pytest.skip(skip_reason(), allow_module_level=True)

import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import lrsched  # noqa: E402
from lrsched.torch import RemoteLRScheduler, build_spec  # noqa: E402

COSINE = {"type": "CosineAnnealingLR", "T_max": 10, "eta_min": 0.001}
_names = itertools.count(1)


def fresh_name(prefix="follow"):
    return f"{prefix}/{next(_names)}"


class Opt:
    """Not torch: SGD-like `param_groups` with momentum, `groups` of them."""

    def __init__(self, groups=1):
        self.param_groups = [{"lr": 0.1 * (g + 1), "momentum": 0.9} for g in range(groups)]


def sgd(groups=1):
    return Opt(groups)


def read_groups(optimizer):
    """(lrs, momenta) of the param groups."""
    return ([g["lr"] for g in optimizer.param_groups],
            [g["momentum"] for g in optimizer.param_groups])


# `server` and `client`: conftest.py (one server for the module).


class CountingClient(lrsched.Client):
    """A Client that counts its GetLR and Step calls (what a follower costs)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.get_lrs = 0
        self.steps = 0

    def get_lr(self, *args, **kwargs):
        self.get_lrs += 1
        return super().get_lr(*args, **kwargs)

    def step(self, *args, **kwargs):
        self.steps += 1
        return super().step(*args, **kwargs)


def test_follow_reads_one_window_per_k_steps(server, client):
    """follow=True (as the C++ RemoteSchedule's follow): step() makes no Step RPC and one GetLR
    per `window` steps, and the param groups hold the stepping rank's values exactly."""
    name = fresh_name("follow")
    n, k = 10, 4
    ref = client.simulate(build_spec(sgd(groups=2), COSINE), n + 1)
    with CountingClient(server.address) as fc:
        owner_opt, follower_opt = sgd(groups=2), sgd(groups=2)
        # pipeline=False: the owner's steps land before it returns (these tests count where the
        # session is; test_python_pipeline.py covers pipelined steps).
        owner = RemoteLRScheduler(owner_opt, COSINE, name=name, client=client, pipeline=False)
        follower = RemoteLRScheduler(follower_opt, COSINE, name=name, client=fc, follow=True,
                                     window=k)
        fc.get_lrs = 0
        for i in range(1, n + 1):
            # Alternate who goes first: the follower may be one step ahead of the session.
            first, second = (owner, follower) if i % 2 else (follower, owner)
            first.step()
            second.step()
            assert follower.last_epoch == owner.last_epoch == i
            assert read_groups(follower_opt) == read_groups(owner_opt)
            assert follower.get_last_lr() == owner.get_last_lr() == ref.lr[i]
        assert fc.steps == 0 and owner.advanced
        assert fc.get_lrs == math.ceil(n / k), fc.get_lrs  # epochs 1, 5 and 9
        assert client.get_session(name).last_epoch == n


def test_follow_ahead_behind_and_refused(server, client):
    name = fresh_name("follow")
    n = 7
    ref = client.simulate(build_spec(sgd(), COSINE), n + 1)
    with CountingClient(server.address) as fc:
        # Nobody steps: a follower runs ahead of the session, past its window too (then one
        # GetLR for the window and one for the epoch itself), with the exact lookahead values.
        follower = RemoteLRScheduler(sgd(), COSINE, name=name, client=fc, follow=True, window=3)
        for i in range(1, n + 1):
            follower.step()
            assert follower.last_epoch == i and follower.get_last_lr() == ref.lr[i]
        assert fc.steps == 0 and client.get_session(name).last_epoch == 0

        # Behind the session: past epochs are final, read from the session's record.
        owner = RemoteLRScheduler(sgd(), COSINE, name=name, client=client, pipeline=False)
        late = RemoteLRScheduler(sgd(), COSINE, name=name, client=fc, follow=True, window=2)
        for _ in range(5):
            owner.step()
        late.step()
        assert late.last_epoch == 1 and late.get_last_lr() == ref.lr[1]
        assert read_groups(late.optimizer)[0] == ref.lr[1]
        assert late.refresh().last_epoch == 5  # rejoins at the session's epoch
        late.step()
        assert late.last_epoch == 6 and late.get_last_lr() == ref.lr[6]

        with pytest.raises(ValueError, match="step\\(epoch\\) is not supported"):
            late.step(epoch=3)
        with pytest.raises(ValueError, match="window"):
            RemoteLRScheduler(sgd(), COSINE, name=name, client=fc, follow=True, window=0)


def test_follow_plateau_reads_the_current_values(server, client):
    """ReduceLROnPlateau has no lookahead: a follower's step() reads the session's values now
    (one GetLR each), whatever metric it is given."""
    name = fresh_name("follow")
    plateau = {"type": "ReduceLROnPlateau", "patience": 0, "factor": 0.5}
    with CountingClient(server.address) as fc:
        owner_opt, follower_opt = sgd(), sgd()
        owner = RemoteLRScheduler(owner_opt, plateau, name=name, client=client)
        follower = RemoteLRScheduler(follower_opt, plateau, name=name, client=fc, follow=True)
        fc.get_lrs = 0
        for i, loss in enumerate([1.0, 2.0, 3.0, 0.5], start=1):
            owner.step(loss)
            follower.step(123.0)  # ignored: the stepping rank's metric counts
            assert follower.last_epoch == owner.last_epoch == i
            assert read_groups(follower_opt) == read_groups(owner_opt)
        assert owner.get_last_lr() == [0.025]  # two plateaus halved it twice
        assert fc.get_lrs == 4 and fc.steps == 0
