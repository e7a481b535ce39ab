#!/usr/bin/env python3
"""A screenshot of the playground, scored: serves the given runs (default: the zoo's), loads a
binarized-MNIST test digit into the pad, presses Score, hovers the heat map, and saves the page.

    python3 bench/playground_screenshot.py --out docs/playground.png [--index 0] [RUN ...]

Needs chromium and chromium-driver (apt-get install chromium chromium-driver) and a release
build; data from $GENMODELS_DATA (../shared/data by default).
"""
import argparse, base64, gzip, json, os, socket, subprocess, time, urllib.request

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())

def wait(what, check, seconds=120):
    start = time.time()
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if time.time() - start > seconds:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.3)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="*")
    ap.add_argument("--out", default="docs/playground.png")
    ap.add_argument("--index", type=int, default=0, help="which test digit")
    ap.add_argument("--bin", default="target/release/genmodels")
    a = ap.parse_args()
    data = os.environ.get("GENMODELS_DATA", os.path.join("..", "shared", "data"))
    with gzip.open(os.path.join(data, "binarized-mnist", "binarized_mnist_test.amat.gz"), "rt") as f:
        for i, line in enumerate(f):
            if i == a.index:
                digit = [255 * int(v) for v in line.split()]
                break
    port, driver_port = free_port(), free_port()
    server = subprocess.Popen([a.bin, "serve", *a.runs, "--port", str(port)], stdout=subprocess.PIPE, text=True)
    driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{driver_port}"
    try:
        wait("the server", lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=2).status == 200, 600)
        wait("chromedriver", lambda: call("GET", f"{base}/status")["value"]["ready"])
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1100,1500"]}}}}
        sid = call("POST", f"{base}/session", caps)["value"]["sessionId"]
        s = f"{base}/session/{sid}"
        js = lambda code: call("POST", f"{s}/execute/sync", {"script": code, "args": []})["value"]
        call("POST", f"{s}/url", {"url": f"http://127.0.0.1:{port}/"})
        wait("the page", lambda: js("return grid.length") == 784)
        js(f"grid.set({json.dumps(digit)}); paint(); document.querySelector('#score').click(); return 1")
        wait("the scores", lambda: js("return document.querySelectorAll('svg.hist').length") > 0)
        js("const h = document.querySelector('#heat'), r = h.getBoundingClientRect();"
           "h.dispatchEvent(new PointerEvent('pointermove', {bubbles: true, clientX: r.left + 14 * S + 2, clientY: r.top + 12 * S + 2})); return 1")
        shot = call("GET", f"{s}/screenshot")["value"]
        with open(a.out, "wb") as f:
            f.write(base64.b64decode(shot))
        print(a.out)
        call("DELETE", s)
    finally:
        server.terminate()
        driver.terminate()

if __name__ == "__main__":
    main()
