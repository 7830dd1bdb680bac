"""The dashboard's browser harness, shared by tests/python/test_dashboard.py and
scripts/dashboard-screenshot.py (so the committed screenshots come from the code path the test
checks): an lrsched-server with --http_listen and a tokens file, a set of sessions made over
gRPC (labels, an amendment, momentum, weight decay, a metric-driven schedule), a headless
Chromium through Debian's chromedriver, and the steps that open each page and wait until it
shows what the server holds.

Not a test module (pytest collects test_*.py only). Needs selenium only in browser().
"""
import os
import subprocess
import time
import urllib.request

from pyclient_server import SERVER_BIN, free_port, stop_process
from ready import wait_until_healthy

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
START_TIMEOUT = 20  # seconds for the server's gRPC and HTTP ports to answer
WAIT = 10  # seconds for the page to show a state the server already holds
ADMIN_TOKEN = "dashboard-admin-token-0123456789"
READER_TOKEN = "dashboard-reader-token-0123456789"
WINDOW = (1280, 860)

COSINE = "vision/resnet50-cosine"
ONECYCLE = "vision/vit-onecycle"
AMENDED = "nlp/bert-amended"
PLATEAU = "nlp/bert-plateau"
MEGATRON = "llm/gpt-wsd"
AMEND_AT = 20
AMEND_REASON = "loss spike at 20: halve the lr"


def browser_skip_reason():
    """Why a browser cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (Debian's chromium and chromium-driver packages)"
    return None


class HttpServer:
    """One lrsched-server on 127.0.0.1 with gRPC on `port`, HTTP/JSON and the dashboard on
    `http_port`, tokens required (ADMIN_TOKEN admin, READER_TOKEN reader), data and log under
    `tmp_path`."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.port, self.http_port = free_port(), free_port()
        self.log_path = tmp_path / "server.log"
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def log(self):
        return self.log_path.read_text(errors="replace")

    def start(self):
        tokens = self.tmp_path / "tokens"
        tokens.write_text(f"{ADMIN_TOKEN} admin dash-admin\n{READER_TOKEN} reader viewer\n")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [SERVER_BIN, f"--listen={self.address}",
                 f"--http_listen=127.0.0.1:{self.http_port}",
                 f"--data_dir={self.tmp_path / 'data'}", f"--tokens_file={tokens}",
                 "--sqlite_synchronous=normal", "--shutdown_grace=1s"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            wait_until_healthy(self.address, proc=self.proc, deadline=deadline, log=self.log)
            last = None
            while time.monotonic() < deadline:  # the HTTP port: the page itself answers
                try:
                    with urllib.request.urlopen(self.url + "/", timeout=2) as r:
                        if r.status == 200:
                            return self
                except OSError as e:
                    last = e
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            raise AssertionError(f"{self.url}/ did not answer ({last}):\n{self.log()}")
        except BaseException:
            self.stop()
            raise

    def stop(self):
        proc, self.proc = self.proc, None
        stop_process(proc)


def sgd(scheduler, lrs=(0.1,), momentum=None):
    groups = [{"lr": lr} if momentum is None else {"lr": lr, "momentum": momentum} for lr in lrs]
    return {"optimizer": {"type": "SGD", "param_groups": groups}, "scheduler": scheduler}


def populate(client):
    """Creates the sessions the pages show; returns {name: last_epoch}."""
    client.create_session(COSINE, sgd({"type": "CosineAnnealingLR", "T_max": 90, "eta_min": 0.001},
                                      momentum=0.9),
                          labels={"team": "vision", "stage": "pretrain"})
    client.create_session(ONECYCLE, sgd({"type": "OneCycleLR", "max_lr": [0.05, 0.02],
                                         "total_steps": 200, "pct_start": 0.3},
                                        lrs=(0.05, 0.02), momentum=0.9),
                          labels={"team": "vision", "stage": "finetune"})
    client.create_session(AMENDED, sgd({"type": "CosineAnnealingLR", "T_max": 80},
                                       lrs=(0.02, 0.005)),
                          labels={"team": "nlp", "stage": "pretrain"})
    client.create_session(PLATEAU, sgd({"type": "ReduceLROnPlateau", "factor": 0.5,
                                        "patience": 2}, lrs=(0.01,)),
                          labels={"team": "nlp", "stage": "finetune"})
    client.create_session(MEGATRON, {
        "optimizer": {"type": "AdamW", "param_groups": [
            {"lr": 0.0, "betas": [0.9, 0.95], "weight_decay": 0.1}]},
        "scheduler": {"type": "megatron.OptimizerParamScheduler", "init_lr": 0.0,
                      "max_lr": 0.001, "min_lr": 1e-05, "lr_warmup_steps": 320,
                      "lr_decay_steps": 3200, "lr_decay_style": "WSD", "wsd_decay_steps": 640,
                      "lr_wsd_decay_style": "minus_sqrt", "start_wd": 0.0, "end_wd": 0.1,
                      "wd_incr_steps": 3200, "wd_incr_style": "linear", "increment": 32}},
        labels={"team": "llm", "stage": "pretrain"})
    for _ in range(30):
        client.step(COSINE)
    for _ in range(50):
        client.step(ONECYCLE)
    for _ in range(AMEND_AT):
        client.step(AMENDED)
    client.amend(AMENDED, scale=0.5, at_epoch=AMEND_AT, reason=AMEND_REASON)
    for _ in range(10):
        client.step(AMENDED)
    for metric in (1.0, 0.9, 0.95, 0.97, 0.99, 0.98, 1.0, 0.99):
        client.step(PLATEAU, metric=metric)
    for _ in range(60):
        client.step(MEGATRON)
    return {s.name: s.last_epoch for s in client.list_sessions()}


def browser(tmp_path):
    """A headless Chromium (Debian's, through its chromedriver) that reaches nothing but
    127.0.0.1: without these flags it keeps retrying Google's hosts on a closed network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    service = Service(CHROMEDRIVER, log_path=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(WAIT)
    return driver


def wait_for(driver, what, condition, timeout=WAIT):
    """Polls condition(driver) (every 50 ms, at most `timeout` s) until it is truthy; returns
    its value, or fails naming `what` and the page's error box."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition(driver)
        if value:
            return value
        if time.monotonic() > deadline:
            err = driver.execute_script("return document.getElementById('error').textContent")
            raise AssertionError(f"the page did not show {what} within {timeout} s "
                                 f"(error box: {err!r}; {driver.current_url})")
        time.sleep(0.05)


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def text(driver, selector):
    """The textContent of the element `selector` finds (None if none), read in one script: the
    page re-renders its parts, so an element found by one call may be gone at the next."""
    return js(driver, "const e = document.querySelector(arguments[0]); "
                      "return e && e.textContent", selector)


def classes(driver, selector):
    return js(driver, "const e = document.querySelector(arguments[0]); "
                      "return e ? [...e.classList] : []", selector)


def list_rows(driver):
    """{name: {type, epoch, lr, labels, updated}} of the session table's rows."""
    return js(driver, """
      const out = {};
      for (const tr of document.querySelectorAll('#sessions tbody tr')) {
        const cell = (c) => tr.querySelector('td.' + c).textContent;
        out[tr.dataset.name] = {type: cell('type'), epoch: cell('epoch'), lr: cell('lr'),
          labels: [...tr.querySelectorAll('.label')].map((l) => l.dataset.label),
          updated: cell('updated')};
      }
      return out;""")


def use_token(driver, token):
    field = driver.find_element("id", "token")
    field.clear()
    field.send_keys(token)
    driver.find_element("css selector", "#token-form button").click()


def set_filters(driver, prefix, labels):
    """Types the list's filters as a user would (each field's `input` event fires)."""
    js(driver, """
      for (const [id, value] of [['filter-prefix', arguments[0]], ['filter-labels', arguments[1]]]) {
        const f = document.getElementById(id);
        f.value = value;
        f.dispatchEvent(new Event('input', {bubbles: true}));
      }""", prefix, labels)


def show_list(driver, url, token, names):
    """Opens the list without filters (giving the token) and waits until its rows are exactly
    `names`. (Going from one #/ route to another keeps the document: the fields stay.)"""
    driver.get(url + "/#/")
    set_filters(driver, "", "")
    use_token(driver, token)
    wait_for(driver, f"the rows {sorted(names)}", lambda d: set(list_rows(d)) == set(names))


def curve(driver, kind, cls, group):
    """The polyline of `kind` (lr, momentum, weightDecay), class past|ahead, for `group`:
    {count, points (the drawn ones), first, last} or None."""
    return js(driver, """
      const p = document.querySelector(
          `#charts svg[data-kind="${arguments[0]}"] polyline.${arguments[1]}` +
          `[data-group="${arguments[2]}"]`);
      if (!p) return null;
      return {count: Number(p.dataset.count), points: p.points.numberOfItems,
              first: p.dataset.first, last: p.dataset.last};""", kind, cls, group)


def show_session(driver, url, name, epoch):
    """Opens session `name`'s view and waits until it shows `epoch` with its curve drawn."""
    driver.get(url + "/#/session/" + name)
    wait_for(driver, f"{name} at epoch {epoch}",
             lambda d: js(d, "return document.getElementById('session-view').dataset.epoch")
             == str(epoch) and curve(d, "lr", "past", 0) is not None)


def fit_height(driver):
    """Resizes the window so that its viewport ends just below the page's content: a screenshot
    holds the whole page and no empty space (the window's frame, if any, measured first)."""
    driver.set_window_size(*WINDOW)
    frame = WINDOW[1] - js(driver, "return window.innerHeight")
    bottom = js(driver, "return Math.ceil(document.querySelector('main')"
                        ".getBoundingClientRect().bottom)")
    driver.set_window_size(WINDOW[0], min(max(int(bottom) + frame, 300), 3000))


def screenshots(driver, url, out_dir, names):
    """The list and the amended session's view as PNGs in out_dir (dashboard-list.png,
    dashboard-session.png); returns their paths."""
    show_list(driver, url, READER_TOKEN, names)
    fit_height(driver)
    listing = out_dir / "dashboard-list.png"
    driver.save_screenshot(str(listing))
    show_session(driver, url, AMENDED, names[AMENDED])
    fit_height(driver)
    session = out_dir / "dashboard-session.png"
    driver.save_screenshot(str(session))
    driver.set_window_size(*WINDOW)
    return listing, session
