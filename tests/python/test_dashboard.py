"""The web dashboard in a real browser (issue #19): headless Chromium (Debian's, through its
chromedriver and python3-selenium) opens the page an lrsched-server serves on --http_listen,
with tokens required, against sessions made over gRPC (dashboard_harness.populate), and the
test reads the DOM:
- the list: one row per session with its type, epoch, lr and labels, filtered by name prefix
  and by label (server-side, through ListSessions' query);
- without a token the page says one is needed; with it the rows appear;
- a session's view: the past curve has one point per epoch of the record (GetHistory), the
  lookahead one per epoch of the window (GetLR), an amendment its marker, momentum and
  weight decay their panels where served, a ReduceLROnPlateau session no lookahead;
- a step made over gRPC shows on the open page within 2 s (Watch as Server-Sent Events), and
  so do an amendment's marker and a deletion;
- a wrong token is refused, in words.
Screenshots of both pages go into the test's tmp dir (scripts/dashboard-screenshot.py makes the
committed ones in docs/ the same way).

One server and one browser for the module. Skips visibly without the build (LRSCHED_BIN_DIR),
selenium, /usr/bin/chromium or /usr/bin/chromedriver.
"""
import time

import pytest

from pyclient_server import skip_reason

if skip_reason():
    pytest.skip(skip_reason(), allow_module_level=True)
pytest.importorskip("selenium")

import dashboard_harness as h  # noqa: E402

if h.browser_skip_reason():
    pytest.skip(h.browser_skip_reason(), allow_module_level=True)

import lrsched  # noqa: E402

LIVE_BOUND = 2.0  # seconds from a gRPC step's reply to the page showing it (the bound)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = h.HttpServer(tmp_path_factory.mktemp("dashboard")).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def client(server):
    with lrsched.Client(server.address, token=h.ADMIN_TOKEN, retry_timeout=5.0) as c:
        yield c


@pytest.fixture(scope="module")
def epochs(client):
    return h.populate(client)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    d = h.browser(tmp_path_factory.mktemp("browser"))
    try:
        yield d
    finally:
        d.quit()


def test_without_a_token_the_page_asks_for_one(server, epochs, driver):
    driver.get(server.url + "/")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    text = h.wait_for(driver, "the token prompt", lambda d: h.js(
        d, "const e = document.getElementById('error'); return !e.hidden && e.textContent"))
    assert "requires a token" in text
    assert "needed" in h.classes(driver, "#token-form")
    assert h.list_rows(driver) == {}
    h.use_token(driver, "not-a-token-of-this-server-0123")
    h.wait_for(driver, "the refusal", lambda d: "refused this token" in h.js(
        d, "return document.getElementById('error').textContent"))
    assert h.list_rows(driver) == {}


def test_list_shows_every_session(server, client, epochs, driver):
    h.show_list(driver, server.url, h.READER_TOKEN, epochs)
    rows = h.list_rows(driver)
    for s in client.list_sessions():
        row = rows[s.name]
        assert row["epoch"] == str(s.last_epoch)
        assert row["type"] == s.scheduler_type
        assert row["labels"] == sorted(f"{k}={v}" for k, v in s.labels.items())
        assert [float(v) for v in row["lr"].split(", ")] == pytest.approx(s.lrs, rel=1e-4)
        assert row["updated"].endswith("ago")
    assert rows[h.MEGATRON]["type"] == "megatron.OptimizerParamScheduler"
    assert h.js(driver, "return sessionStorage.getItem('lrsched.token')") == h.READER_TOKEN


def filter_to(driver, prefix, labels, expected):
    h.set_filters(driver, prefix, labels)
    h.wait_for(driver, f"the rows {sorted(expected)}",
               lambda d: set(h.list_rows(d)) == set(expected))


def test_list_filters_by_prefix_and_label(server, epochs, driver):
    h.show_list(driver, server.url, h.READER_TOKEN, epochs)
    filter_to(driver, "vision/", "", {h.COSINE, h.ONECYCLE})
    filter_to(driver, "", "team=nlp", {h.AMENDED, h.PLATEAU})
    filter_to(driver, "", "team=nlp, stage=finetune", {h.PLATEAU})
    filter_to(driver, "vision/", "team=nlp", set())
    assert h.text(driver, "#list-count") == "0 sessions"
    filter_to(driver, "", "", set(epochs))


def test_a_bad_label_filter_is_named(server, epochs, driver):
    h.show_list(driver, server.url, h.READER_TOKEN, epochs)
    driver.find_element("id", "filter-labels").send_keys("team")  # typed: key events
    text = h.wait_for(driver, "the filter error", lambda d: h.js(
        d, "const e = document.getElementById('error'); return !e.hidden && e.textContent"))
    assert 'Labels filter: "team" is not KEY=VALUE' in text


def test_session_view_draws_record_lookahead_and_amendment(server, client, epochs, driver):
    h.show_list(driver, server.url, h.READER_TOKEN, epochs)
    # Clicked from a script, in one go: the list's periodic refresh replaces its rows, so an
    # element found first may be gone when the click comes.
    h.js(driver, "document.querySelector(`tr[data-name='${arguments[0]}'] a`).click()", h.AMENDED)
    last = epochs[h.AMENDED]
    h.wait_for(driver, "the amended session's view",
               lambda d: h.curve(d, "lr", "past", 1) and h.curve(d, "lr", "ahead", 1))
    assert driver.current_url.endswith("#/session/" + h.AMENDED)
    record = client.history(h.AMENDED)
    for group in (0, 1):
        past = h.curve(driver, "lr", "past", group)
        assert past == {"count": len(record.epochs), "points": len(record.epochs),
                        "first": "0", "last": str(last)}
        ahead = h.curve(driver, "lr", "ahead", group)
        assert ahead["count"] == ahead["points"] == 100  # GetLR window=100, entry 0 = now
    marker = h.js(driver, """
        const g = document.querySelector('#charts svg[data-kind="lr"] g.amend');
        return g && {kind: g.dataset.kind, epoch: g.dataset.epoch,
                     text: g.querySelector('text').textContent};""")
    assert marker == {"kind": "scale", "epoch": str(h.AMEND_AT),
                      "text": f"scale ×0.5: {h.AMEND_REASON}"}
    # The amendment is visible in the curve itself: the lr halves at its epoch.
    lrs = {e.epoch: e.lrs[0] for e in record.epochs}
    assert lrs[h.AMEND_AT] == pytest.approx(lrs[h.AMEND_AT - 1] * 0.5, rel=0.05)
    assert h.js(driver, "return document.querySelectorAll('#charts svg').length") == 1  # no momentum


def test_momentum_weight_decay_and_no_lookahead_where_served(server, epochs, driver):
    h.show_list(driver, server.url, h.READER_TOKEN, epochs)
    h.show_session(driver, server.url, h.ONECYCLE, epochs[h.ONECYCLE])
    momentum = h.curve(driver, "momentum", "past", 0)
    assert momentum["count"] == epochs[h.ONECYCLE] + 1
    assert h.curve(driver, "momentum", "ahead", 1)["count"] == 100
    assert h.curve(driver, "weightDecay", "past", 0) is None

    h.show_session(driver, server.url, h.MEGATRON, epochs[h.MEGATRON])
    wd = h.curve(driver, "weightDecay", "past", 0)
    assert wd["count"] == 61 and wd["last"] == str(epochs[h.MEGATRON])  # num_steps 0, 32, ...
    assert h.curve(driver, "weightDecay", "ahead", 0)["count"] == 100

    h.show_session(driver, server.url, h.PLATEAU, epochs[h.PLATEAU])
    assert h.curve(driver, "lr", "past", 0)["count"] == epochs[h.PLATEAU] + 1
    assert h.curve(driver, "lr", "ahead", 0) is None
    assert "No lookahead" in h.text(driver, "#session-note")


def test_screenshots_of_both_pages(server, epochs, driver, tmp_path):
    """What scripts/dashboard-screenshot.py commits under docs/, made here the same way."""
    import struct
    for png in h.screenshots(driver, server.url, tmp_path, epochs):
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n", png
        width, height = struct.unpack(">II", head[16:24])
        assert width == h.WINDOW[0] and height >= 300, (png, width, height)
    print(f"screenshots in {tmp_path}")


def test_a_window_the_schedule_refuses_is_halved(server, client, epochs, driver):
    """OneCycleLR refuses a step past total_steps, so GetLR refuses a window through it
    (FAILED_PRECONDITION): the page asks again for half the window until one fits."""
    name = "tmp/onecycle-near-end"
    client.create_session(name, h.sgd({"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 60},
                                      momentum=0.9))
    try:
        for _ in range(30):
            client.step(name)
        h.show_session(driver, server.url, name, 30)
        # 100 (to epoch 129) and 50 (to 79) go past total_steps; 25 (epochs 30..54) fits.
        h.wait_for(driver, "the halved window", lambda d: h.curve(d, "lr", "ahead", 0) == {
            "count": 25, "points": 25, "first": "30", "last": "54"})
    finally:
        client.delete_session(name)


def test_a_grpc_step_shows_on_the_page_within_2_s(server, client, epochs, driver):
    h.show_list(driver, server.url, h.READER_TOKEN, epochs)
    last = client.get_session(h.COSINE).last_epoch
    h.show_session(driver, server.url, h.COSINE, last)
    h.wait_for(driver, "the live status", lambda d: "live" in h.classes(d, "#status"))
    before = h.curve(driver, "lr", "past", 0)
    for n in (1, 2, 3):
        stepped = client.step(h.COSINE).session
        assert stepped.last_epoch == last + n
        t0 = time.monotonic()
        h.wait_for(driver, f"epoch {stepped.last_epoch}",
                   lambda d: h.js(d, "return document.getElementById('session-view')"
                                     ".dataset.epoch") == str(stepped.last_epoch)
                   and h.curve(d, "lr", "past", 0)["count"] == before["count"] + n,
                   timeout=LIVE_BOUND)
        assert time.monotonic() - t0 <= LIVE_BOUND
        assert h.text(driver, '[data-fact="epoch"] dd') == str(stepped.last_epoch)
    # The lookahead moved with it: it starts at the new epoch.
    h.wait_for(driver, "the window moved", lambda d: h.curve(d, "lr", "ahead", 0) == {
        "count": 100, "points": 100, "first": str(last + 3), "last": str(last + 102)})
    # And the list shows it too (its periodic refresh).
    driver.get(server.url + "/#/")
    h.wait_for(driver, "the list's new epoch",
               lambda d: h.list_rows(d).get(h.COSINE, {}).get("epoch") == str(last + 3))


def test_an_amendment_and_a_deletion_show_live(server, client, epochs, driver):
    name = "tmp/deleted-live"
    client.create_session(name, h.sgd({"type": "StepLR", "step_size": 5, "gamma": 0.5}))
    try:
        for _ in range(3):
            client.step(name)
        h.show_session(driver, server.url, name, 3)
        h.wait_for(driver, "the live status", lambda d: "live" in h.classes(d, "#status"))
        assert h.js(driver, "return document.querySelectorAll('g.amend').length") == 0
        client.amend(name, scale=0.25, reason="live marker")
        marker = h.wait_for(driver, "the amendment's marker", lambda d: h.js(d, """
            const g = document.querySelector('#charts svg[data-kind="lr"] g.amend');
            return g && g.querySelector('text').textContent;"""), timeout=LIVE_BOUND)
        assert marker == "scale ×0.25: live marker"
        # The session's values now are the amended ones (the amendment is at the current
        # epoch), and the page shows them.
        lr = h.wait_for(driver, "the amended lr", lambda d: h.js(
            d, "return document.querySelector('#session-groups tbody td.num').textContent"))
        assert float(lr) == pytest.approx(0.1 * 0.25)
    finally:
        client.delete_session(name)
    h.wait_for(driver, "the deletion", lambda d: h.text(
        d, "#session-note") == "This session was deleted.", timeout=LIVE_BOUND)
    assert h.text(driver, "#status") == "session deleted"
