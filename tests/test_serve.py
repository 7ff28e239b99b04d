"""`effnet serve` (export/webapp.py's `server`) against hostile requests, on 127.0.0.1 only.

Each test serves a folder it makes (no model: the server only serves files) from a thread of
this process on a free port, sends a bounded number of requests to 127.0.0.1 and shuts the
server down. What must hold: only regular files whose real path lies inside the folder (a
symlink out is not found, nothing of its target is sent), no listings, no dot files, no `..` in
any spelling; only the Host names of this machine (against DNS rebinding); only GET and HEAD;
nosniff, the page's Content-Security-Policy, no referrer and revalidated caching on every
answer. The last test opens a page in headless Chromium under that policy; the app's own page
classifies under it in tests/test_browser.py, whose page tests are served by `server` too.
"""

import base64
import json
import os
import socket
import threading
from contextlib import contextmanager

import pytest

from chromium_client import Browser
from keras_effnet.export.webapp import DEFAULT_RUNTIME, server

SECRET = "not-for-the-web-3f1c"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADh"
                       "gGAWjR9awAAAABJRU5ErkJggg==")  # 1 x 1 pixel
WASM = b"\0asm\1\0\0\0"  # the empty WebAssembly module


def _app(tmp_path, runtime=DEFAULT_RUNTIME):
    """An app folder as `effnet app` writes one (page, app.json, model, examples), beside a
    folder outside it that holds SECRET; returns the app folder."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET)
    (outside / "dir" / "secret.txt").write_text(SECRET)
    app = tmp_path / "app"
    (app / "examples").mkdir(parents=True)
    (app / "index.html").write_text("<!doctype html><title>app</title>\n")
    (app / "app.js").write_text("// the page's script\n")
    (app / "app.json").write_text(json.dumps({"runtime": {"url": runtime}}))
    (app / "m.tflite").write_bytes(b"\0\0\0\0TFL3 a model")
    (app / "examples" / "a.png").write_bytes(PNG)
    (app / "runtime.wasm").write_bytes(WASM)
    return app


@contextmanager
def serving(folder):
    """`server(folder, 0)` in a thread; yields its port; shut down after."""
    httpd = server(folder, 0)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def ask(port, target="/", method="GET", host="default", version="HTTP/1.1", headers=()):
    """One request as raw bytes to 127.0.0.1:`port` (`host`: the Host header's value, None for
    none; "default" is 127.0.0.1:port); returns (status, headers with lower-case names,
    body)."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {f'127.0.0.1:{port}' if host == 'default' else host}")
    lines += [f"{name}: {value}" for name, value in headers]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while chunk := connection.recv(1 << 16):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *fields = head.decode("latin-1").split("\r\n")
    got = {}
    for field in fields:
        name, _, value = field.partition(":")
        got.setdefault(name.strip().lower(), []).append(value.strip())
    return int(status.split()[1]), {name: ", ".join(v) for name, v in got.items()}, body


def _refused(status, headers, body, code):
    """A refusal: `code`, a short text body, nothing of SECRET, not stored."""
    assert status == code, (status, body)
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body.startswith(str(code).encode()) and len(body) < 300, body
    assert SECRET.encode() not in body
    assert headers["cache-control"] == "no-store"


def test_serve_serves_only_regular_files_inside_its_folder(tmp_path):
    """Symlinks out of the folder (a directory, a file, index.html itself in a subfolder) are
    not found and send nothing of their target; a symlink inside to a file inside is served;
    a folder without index.html, a dot file and a FIFO are not found (no listing, no hang);
    `/` is index.html; a served folder that is itself a symlink works."""
    app = _app(tmp_path)
    outside = tmp_path / "outside"
    (app / "linked-dir").symlink_to(outside / "dir", target_is_directory=True)
    (app / "linked-file.txt").symlink_to(outside / "secret.txt")
    (app / "model.tflite").symlink_to(app / "m.tflite")
    (app / "sub").mkdir()
    (app / "sub" / "index.html").symlink_to(outside / "secret.txt")
    (app / ".env").write_text(SECRET)
    (app / ".git").mkdir()
    (app / ".git" / "config").write_text(SECRET)
    os.mkfifo(app / "pipe")
    (tmp_path / "link-to-app").symlink_to(app, target_is_directory=True)
    with serving(app) as port:
        status, headers, body = ask(port, "/")
        assert status == 200 and body == (app / "index.html").read_bytes()
        assert headers["content-type"] == "text/html; charset=utf-8"
        status, _, body = ask(port, "/model.tflite")
        assert status == 200 and body == (app / "m.tflite").read_bytes()
        for target in ("/linked-dir/", "/linked-dir", "/linked-dir/secret.txt",
                       "/linked-file.txt", "/sub/", "/sub", "/sub/index.html", "/examples/",
                       "/examples", "/.env", "/.git/config", "/.git/", "/pipe", "/missing"):
            _refused(*ask(port, target), 404)
            status, _, body = ask(port, target, method="HEAD")
            assert status == 404 and body == b"", target
    with serving(tmp_path / "link-to-app") as port:
        assert ask(port, "/app.js")[0] == 200


def test_serve_refuses_traversal_in_any_spelling(tmp_path):
    """`..`, encoded (any case), double-encoded, with encoded slashes or backslashes, with a
    NUL, as an absolute URL or `//`: not found, nothing of the file outside sent."""
    app = _app(tmp_path)
    with serving(app) as port:
        for target in ("/../outside/secret.txt", "/examples/../../outside/secret.txt",
                       "/%2e%2e/outside/secret.txt", "/%2E%2E/outside/secret.txt",
                       "/%2e%2e%2foutside%2fsecret.txt", "/..%2Foutside%2Fsecret.txt",
                       "/%252e%252e/outside/secret.txt", "/..%5coutside%5csecret.txt",
                       "/..\\outside\\secret.txt", "/examples\\..\\..\\outside\\secret.txt",
                       "/app.js%00", "/%00../outside/secret.txt", "/app.js%0a",
                       f"//{tmp_path}/outside/secret.txt",
                       "http://127.0.0.1/../outside/secret.txt", "/%ff%fe"):
            _refused(*ask(port, target), 404)
        assert ask(port, "/examples/a.png")[2] == PNG  # the legitimate name still works


def test_serve_answers_only_to_its_own_host_names(tmp_path):
    """localhost, 127.0.0.1 and [::1], with the port or none (any case) are answered; any
    other Host (a rebound name, another port, two Host headers, none on HTTP/1.1) gets 421
    with a short text body; HTTP/1.0, where Host is optional, is answered without one."""
    app = _app(tmp_path)
    with serving(app) as port:
        for host in ("127.0.0.1", f"127.0.0.1:{port}", "localhost", f"localhost:{port}",
                     f"LocalHost:{port}", "[::1]", f"[::1]:{port}"):
            status, _, body = ask(port, "/app.json", host=host)
            assert status == 200 and b"runtime" in body, host
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}",
                     f"localhost.evil.example:{port}", f"127.0.0.1.evil.example:{port}",
                     f"127.0.0.1:{port}@evil.example", "0.0.0.0", "", None):
            status, headers, body = ask(port, "/app.json", host=host)
            _refused(status, headers, body, 421)
            assert b"answers to Host localhost, 127.0.0.1, [::1]" in body, host
            assert b"runtime" not in body
        _refused(*ask(port, "/app.json", headers=[("Host", "evil.example")]), 421)
        assert ask(port, "/app.json", host=None, version="HTTP/1.0")[0] == 200


def test_serve_headers_on_every_answer(tmp_path):
    """nosniff, no referrer and the CSP (the page's files, the pinned CDN, WebAssembly,
    blob:/data: images; nothing inline) on 200, 304 and every refusal; the types browsers
    check; files revalidated (no-cache, an ETag that a rewritten file changes), refusals not
    stored. The CSP adds the http(s) mirror app.json names, and only a well-formed origin."""
    app = _app(tmp_path)
    with serving(app) as port:
        answers = {target: ask(port, target) for target in (
            "/", "/index.html", "/app.js", "/app.json", "/m.tflite", "/runtime.wasm",
            "/examples/a.png", "/missing")}
        answers["421"] = ask(port, host="evil.example")
        answers["405"] = ask(port, method="POST", headers=[("Content-Length", "0")])
        tag = answers["/app.js"][1]["etag"]
        answers["304"] = ask(port, "/app.js", headers=[("If-None-Match", tag)])
        (app / "app.js").write_text("// the page's script, rewritten\n")
        rewritten = ask(port, "/app.js", headers=[("If-None-Match", tag)])
    policy = answers["/"][1]["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives == {
        "default-src": "'none'",
        "script-src": "'self' https://cdn.jsdelivr.net 'wasm-unsafe-eval'",
        "connect-src": "'self' https://cdn.jsdelivr.net",
        "img-src": "'self' blob: data:", "media-src": "'self' blob: mediastream:",
        "style-src": "'self'", "base-uri": "'none'", "form-action": "'none'",
        "frame-ancestors": "'none'"}
    assert DEFAULT_RUNTIME.startswith("https://cdn.jsdelivr.net/")
    for name, (status, headers, _) in answers.items():
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["content-security-policy"] == policy, name
        assert headers["server"] == "effnet-serve", name
        if status in (200, 304):
            assert headers["cache-control"] == "no-cache" and headers["etag"], name
    assert answers["304"][0] == 304 and answers["304"][2] == b""
    assert rewritten[0] == 200 and rewritten[2] == b"// the page's script, rewritten\n"
    assert rewritten[1]["etag"] != tag
    types = {name: answers[name][1]["content-type"] for name in (
        "/", "/app.js", "/app.json", "/m.tflite", "/runtime.wasm", "/examples/a.png")}
    assert types == {"/": "text/html; charset=utf-8", "/app.js": "text/javascript; charset=utf-8",
                     "/app.json": "application/json", "/m.tflite": "application/octet-stream",
                     "/runtime.wasm": "application/wasm", "/examples/a.png": "image/png"}
    assert [answers[name][0] for name in ("/missing", "421", "405")] == [404, 421, 405]

    for i, (runtime, sources) in enumerate((
            ("https://mirror.example:8443/tv/", " https://mirror.example:8443"), ("runtime", ""),
            ("https://x.example; script-src *", ""), ("javascript:alert(1)", ""))):
        other = tmp_path / f"other{i}"
        _app(other, runtime=runtime)
        with serving(other / "app") as port:
            got = ask(port, "/")[1]["content-security-policy"]
        assert f"script-src 'self' https://cdn.jsdelivr.net{sources} 'wasm-unsafe-eval';" in got
        assert f"connect-src 'self' https://cdn.jsdelivr.net{sources};" in got


def test_serve_answers_get_and_head_only(tmp_path):
    """HEAD: GET's headers without the body. POST, PUT, DELETE, OPTIONS, TRACE: 405 with
    `Allow: GET, HEAD`, nothing written; an unknown method: 501."""
    app = _app(tmp_path)
    before = sorted(p.name for p in app.rglob("*"))
    with serving(app) as port:
        got, head = ask(port, "/m.tflite"), ask(port, "/m.tflite", method="HEAD")
        assert head[0] == 200 and head[2] == b""
        assert head[1]["content-length"] == str(len(got[2])) == got[1]["content-length"]
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"):
            status, headers, body = ask(port, "/upload.txt", method=method,
                                        headers=[("Content-Length", "0")])
            _refused(status, headers, body, 405)
            assert headers["allow"] == "GET, HEAD", method
        _refused(*ask(port, "/", method="BREW"), 501)
    assert sorted(p.name for p in app.rglob("*")) == before


PROBE = """
const seen = [];
document.addEventListener("securitypolicyviolation", (e) => seen.push(e.effectiveDirective));
const load = (src) => new Promise((resolve) => {
  const image = new Image();
  image.onload = () => resolve("loaded");
  image.onerror = () => resolve("blocked");
  image.src = src;
});
const attempt = async (run) => { try { await run(); return "ran"; } catch (e) { return e.name; } };
const out = { inline: document.title === "inline ran" ? "ran" : "blocked" };
out.eval = await attempt(() => eval("1"));
out.function = await attempt(() => new Function("return 1"));
out.fetch = (await fetch("app.json")).ok ? "ran" : "failed";
out.wasm = await attempt(() => WebAssembly.instantiate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])));
out.wasmStreaming = await attempt(() => WebAssembly.instantiateStreaming(fetch("runtime.wasm")));
const png = await (await fetch("examples/a.png")).blob();
out.image = await load("examples/a.png");
out.blobImage = await load(URL.createObjectURL(png));
out.dataImage = await load("data:image/png;base64,PNG64");
out.otherOrigin = await attempt(() => fetch("http://localhost:PORT/app.json"));
await new Promise((resolve) => setTimeout(resolve, 200));  // the violation reports are queued
document.getElementById("results").textContent = JSON.stringify({ ...out, seen });
"""


def test_csp_lets_a_page_run_webassembly_and_blocks_inline_script_and_eval(tmp_path,
                                                                           chromium):
    """Headless Chromium on a page served with the CSP: its own files, fetch, WebAssembly
    (instantiate and instantiateStreaming: 'wasm-unsafe-eval'), its own, blob: and data:
    images work; inline script, eval, new Function and a fetch of another origin (this
    server as `localhost`: nothing leaves the machine) are blocked and reported."""
    app = _app(tmp_path)
    (app / "index.html").write_text(
        '<!doctype html><meta charset="utf-8"><title>probe</title><pre id="results"></pre>'
        '<script>document.title = "inline ran";</script>'
        '<script type="module" src="probe.js"></script>\n')
    with serving(app) as port:
        (app / "probe.js").write_text(PROBE.replace("PNG64", base64.b64encode(PNG).decode())
                                      .replace("PORT", str(port)))
        with Browser(chromium) as browser:
            found = browser.open(f"http://127.0.0.1:{port}/").results(60)
    seen = found.pop("seen")
    assert found == {"inline": "blocked", "eval": "EvalError", "function": "EvalError",
                     "fetch": "ran", "wasm": "ran", "wasmStreaming": "ran", "image": "loaded",
                     "blobImage": "loaded", "dataImage": "loaded", "otherOrigin": "TypeError"}
    assert {"script-src", "connect-src"} <= set(seen), seen
