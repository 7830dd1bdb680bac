#!/usr/bin/python3
"""Regenerates the dashboard's screenshots committed under docs/ (dashboard-list.png,
dashboard-session.png, shown by README "Dashboard"), through the code path
tests/python/test_dashboard.py checks (tests/python/dashboard_harness.py): an lrsched-server
with --http_listen and tokens in a temporary directory, the harness's sessions made over gRPC,
headless Chromium (Debian's chromium + chromium-driver, python3-selenium).

  scripts/dashboard-screenshot.py [--build=build] [--out=docs]

Needs the built lrsched-server (BUILD/server/lrsched-server) and the Python client's stubs
(BUILD/client/python). Nothing is fetched from the network.
"""
import argparse
import os
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"), help="the CMake build directory")
    ap.add_argument("--out", default=str(ROOT / "docs"), help="where the PNGs go")
    args = ap.parse_args()
    build = pathlib.Path(args.build).resolve()
    os.environ["LRSCHED_BIN_DIR"] = str(build)  # read by pyclient_server at import
    sys.path[:0] = [str(ROOT / "tests" / "python"), str(ROOT / "client" / "python"),
                    str(build / "client" / "python")]
    import dashboard_harness as h
    import lrsched
    from pyclient_server import skip_reason
    for reason in (skip_reason(), h.browser_skip_reason()):
        if reason:
            sys.exit(f"dashboard-screenshot: {reason}")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lrsched-dashboard-") as tmp:
        server = h.HttpServer(pathlib.Path(tmp)).start()
        driver = None
        try:
            with lrsched.Client(server.address, token=h.ADMIN_TOKEN, retry_timeout=5.0) as c:
                epochs = h.populate(c)
            driver = h.browser(pathlib.Path(tmp))
            for path in h.screenshots(driver, server.url, out, epochs):
                print(f"wrote {path}")
        finally:
            if driver is not None:
                driver.quit()
            server.stop()


if __name__ == "__main__":
    main()
