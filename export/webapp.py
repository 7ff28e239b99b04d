"""`effnet app`: a static web page that classifies images on-device with an exported model.

The page (`index.html`, `app.js`, `style.css`: package data in `web/` beside this module) runs
MediaPipe Tasks' `ImageClassifier` from `@mediapipe/tasks-vision` (WebAssembly, CPU), the same
API Android and iOS apps call, on the `.tflite` file copied beside it: no model runs on a
server, which only serves files. `make_app` copies the page, the model and optional example
images into a new folder and writes `app.json`: the model's name, description and labels as
its TFLite metadata says them, its output kind and the crop of the input contract
(`export/contract.py`), the runtime's location and the examples. `serve` serves a folder on
127.0.0.1.

The page feeds the classifier what every client of the package feeds it: the centre square of
`crop` (0.875) of the shorter side, resized to the model's input size in the browser first, so
a photo of any size (the runtime's own path garbles images over 8192 px) gets the label
`effnet predict` gives. Scores are shown as the file gives them, or through a softmax when
its `output` is logits.

The runtime is pinned to TASKS_VISION_VERSION: by default the page loads it from its public
package CDN by that exact version; `runtime=DIR` copies it from a local npm install or
`npm pack` tarball into the app, so the app works offline.

For automation, `index.html?images=a.png,b.png` classifies those files (relative to the
folder) on load and writes `[{"image", "label", "score", "ms"}]` (or `{"error": ...}`) as JSON
into `<pre id="results">` (`ms`: the classifier call, to 0.1 ms).

Example:
    >>> make_app("runs/quickstart/model_int8.tflite", "app", examples="photos/")
    'app'
    >>> serve("app", port=8000)   # http://127.0.0.1:8000/ until Ctrl-C
"""

from __future__ import annotations

import http.server
import json
import mimetypes
import os
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.parse
from http import HTTPStatus
from typing import Any

from keras_effnet.errors import InvalidArgument, MissingFile
from keras_effnet.export.contract import CENTRE_CROP, output_kind
from keras_effnet.files import check_writable_dir

TASKS_VISION = "@mediapipe/tasks-vision"
TASKS_VISION_VERSION = "1.1.0"  # the one place the browser runtime's version is pinned
DEFAULT_RUNTIME = f"https://cdn.jsdelivr.net/npm/{TASKS_VISION}@{TASKS_VISION_VERSION}"
# What the page loads of the runtime: the ES module and the WebAssembly build that
# `FilesetResolver.forVisionTasks` picks (SIMD, or no-SIMD on browsers without it).
RUNTIME_FILES = ("package.json", "vision_bundle.mjs", "wasm/vision_wasm_internal.js",
                 "wasm/vision_wasm_internal.wasm", "wasm/vision_wasm_nosimd_internal.js",
                 "wasm/vision_wasm_nosimd_internal.wasm")
RUNTIME_DIR = "runtime"  # in the app folder, with --runtime=DIR
PAGE_FILES = ("index.html", "app.js", "style.css")
EXAMPLES_DIR = "examples"
MIME_TYPES = {".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript",
              ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm",
              ".tflite": "application/octet-stream", ".txt": "text/plain"}
_METADATA_HINT = ("export it with its metadata: `effnet export --metadata` (the default; "
                  "--nometadata writes a bare file) or `to_tflite(..., metadata=TFLiteMetadata())`")


def _model_facts(path: str) -> dict[str, Any]:
    """What the page shows of a `.tflite` file, read from it (its metadata, its labels file,
    its input tensor); a clear error for anything MediaPipe's ImageClassifier would refuse,
    and for a labels file that is broken, oversized or of another count than the outputs
    (`read_labels`): all before anything is written."""
    from keras_effnet.export.tflite_metadata import model_root, read_labels, read_metadata

    if not os.path.isfile(path):
        raise MissingFile(f"model file not found: {path!r}")
    if not path.endswith(".tflite"):
        raise InvalidArgument(f"model={path!r}; accepted: a .tflite file with image-classifier "
                              "metadata (`effnet export` writes one)")
    with open(path, "rb") as f:
        data = f.read()
    if data[4:8] != b"TFL3":  # the TFLite schema's file identifier
        raise InvalidArgument(f"{path}: not a TFLite file (no TFL3 identifier); accepted: a "
                              ".tflite file with image-classifier metadata (`effnet export` "
                              "writes one)")
    try:
        root = model_root(data)
        info = read_metadata(data)
        graph = root.Subgraphs(0)
        tensor = graph.Tensors(graph.Inputs(0))
        shape, type_code = [int(v) for v in tensor.ShapeAsNumpy()], tensor.Type()
        classes = int(graph.Tensors(graph.Outputs(0)).ShapeAsNumpy()[-1])
    except Exception as err:  # a flatbuffer reader on a file that is not one
        raise InvalidArgument(f"{path}: not a readable TFLite file ({err})") from None
    if info is None:
        raise InvalidArgument(f"{path} has no image-classifier metadata, which MediaPipe Tasks "
                              f"needs to load it; {_METADATA_HINT}")
    from ai_edge_litert import schema_py_generated as schema

    dtype = {v: k.lower() for k, v in vars(schema.TensorType).items() if k.isupper()}[type_code]
    if dtype not in ("float32", "uint8"):
        raise InvalidArgument(f"{path} takes {dtype} input; MediaPipe Tasks' ImageClassifier "
                              "takes float32 or uint8 images: export with --io_dtype=float32 (the "
                              "default) or --io_dtype=uint8")
    return {"name": info["name"] or os.path.splitext(os.path.basename(path))[0],
            "description": info["description"], "version": info["version"],
            "author": info["author"], "license": info["license"],
            "labels": read_labels(data, classes, path),
            "input": {"size": shape[1:3], "dtype": dtype}}


def _runtime_source(runtime: str) -> tuple[str, Any]:
    """Where the runtime's files are: ("url", base URL), ("dir", folder) or ("tgz", tarball).

    A folder may be the package itself (node_modules/@mediapipe/tasks-vision), an extracted
    `npm pack` (its `package/` folder, or the folder holding it) or a project folder whose
    node_modules holds it; a file, the `npm pack` tarball (.tgz)."""
    if runtime.startswith(("http://", "https://")):
        return "url", runtime.rstrip("/")
    accepted = (f"accepted: an http(s) URL of the runtime's folder, or a local copy of "
                f"{TASKS_VISION}@{TASKS_VISION_VERSION}: its npm install folder "
                f"(node_modules/{TASKS_VISION}) or its `npm pack` tarball (.tgz), extracted or "
                f"not (`npm pack {TASKS_VISION}@{TASKS_VISION_VERSION}`)")
    if os.path.isfile(runtime):
        if not tarfile.is_tarfile(runtime):
            raise InvalidArgument(f"runtime={runtime!r} is a file but not a tarball; {accepted}")
        with tarfile.open(runtime) as archive:
            names = set(archive.getnames())
            missing = [name for name in RUNTIME_FILES if f"package/{name}" not in names]
            if missing:
                raise InvalidArgument(f"runtime={runtime!r} lacks {', '.join(missing)}; {accepted}")
            found = json.load(archive.extractfile("package/package.json"))
        source = ("tgz", runtime)
    elif os.path.isdir(runtime):
        for folder in (runtime, os.path.join(runtime, "package"),
                       os.path.join(runtime, "node_modules", *TASKS_VISION.split("/"))):
            if all(os.path.isfile(os.path.join(folder, name)) for name in RUNTIME_FILES):
                break
        else:
            raise InvalidArgument(f"runtime={runtime!r} holds no {TASKS_VISION} files "
                                  f"({', '.join(RUNTIME_FILES)}); {accepted}")
        with open(os.path.join(folder, "package.json"), encoding="utf-8") as f:
            found = json.load(f)
        source = ("dir", folder)
    else:
        raise MissingFile(f"runtime={runtime!r}: no such file or folder; {accepted}")
    if (found.get("name"), found.get("version")) != (TASKS_VISION, TASKS_VISION_VERSION):
        raise InvalidArgument(f"runtime={runtime!r} is {found.get('name')}@{found.get('version')}; "
                              f"the app is tested with {TASKS_VISION}@{TASKS_VISION_VERSION} only: "
                              f"npm pack {TASKS_VISION}@{TASKS_VISION_VERSION}")
    return source


def _copy_runtime(source: tuple[str, Any], folder: str) -> None:
    """The runtime's files (RUNTIME_FILES) into `folder`, from a folder or a tarball."""
    kind, where = source
    os.makedirs(os.path.join(folder, "wasm"))
    if kind == "dir":
        for name in RUNTIME_FILES:
            shutil.copyfile(os.path.join(where, name), os.path.join(folder, name))
        return
    with tarfile.open(where) as archive:  # named members only: nothing else is extracted
        for name in RUNTIME_FILES:
            with archive.extractfile(f"package/{name}") as src, \
                    open(os.path.join(folder, name), "wb") as dst:
                shutil.copyfileobj(src, dst)


def _example_files(examples: str) -> list[str]:
    from keras_effnet.data import IMAGE_SUFFIXES

    if not os.path.isdir(examples):
        raise MissingFile(f"examples={examples!r}: no such folder; accepted: a folder of "
                          f"images ({', '.join(IMAGE_SUFFIXES)})")
    files = sorted(name for name in os.listdir(examples)
                   if name.lower().endswith(IMAGE_SUFFIXES)
                   and os.path.isfile(os.path.join(examples, name)))
    if not files:
        raise InvalidArgument(f"examples={examples!r} holds no image files; accepted: a folder of "
                              f"images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def make_app(model: str | os.PathLike, out: str | os.PathLike,
             examples: str | os.PathLike | None = None, runtime: str | os.PathLike | None = None,
             top_k: int = 5) -> str:
    """Write a static web app into the new folder `out` that classifies images in the browser
    with `model` (a `.tflite` file with image-classifier metadata); return `out`.

    `out` holds `index.html`, `app.js`, `style.css`, `app.json` (what the page shows, with the
    model's `output` kind and the `crop` of the input contract), the model file, with
    `examples` its image files under `examples/` (the page's gallery), and with a local
    `runtime` the runtime's files under `runtime/`. `runtime`: None loads the pinned
    runtime from its public CDN; an http(s) URL, from there; a folder or `.tgz`, copied in
    (works offline). Everything is checked before anything is written; `out` appears whole
    or not at all, and an existing `out` must be empty.
    """
    model, out = os.fspath(model), os.fspath(out)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise InvalidArgument(f"top_k={top_k!r}; accepted: an integer >= 1")
    facts = _model_facts(model)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise InvalidArgument(f"out={out!r} exists and is not an empty folder; accepted: a new or "
                              "empty folder (nothing was written)")
    check_writable_dir(out)
    pictures = _example_files(os.fspath(examples)) if examples is not None else []
    source = _runtime_source(os.fspath(runtime)) if runtime is not None else ("url",
                                                                             DEFAULT_RUNTIME)
    config = {**facts, "output": output_kind(model), "crop": CENTRE_CROP,
              "model": os.path.basename(model), "top_k": top_k,
              "runtime": {"package": TASKS_VISION, "version": TASKS_VISION_VERSION,
                          "url": source[1] if source[0] == "url" else RUNTIME_DIR},
              "examples": [f"{EXAMPLES_DIR}/{urllib.parse.quote(name)}" for name in pictures]}
    web = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
    staging = tempfile.mkdtemp(prefix=".app-", dir=os.path.dirname(os.path.abspath(out)))
    try:  # built beside `out`, then renamed into place in one step
        staged = os.path.join(staging, "app")
        os.mkdir(staged)
        for name in PAGE_FILES:
            shutil.copyfile(os.path.join(web, name), os.path.join(staged, name))
        shutil.copyfile(model, os.path.join(staged, config["model"]))
        if pictures:
            os.mkdir(os.path.join(staged, EXAMPLES_DIR))
            for name in pictures:
                shutil.copyfile(os.path.join(os.fspath(examples), name),
                                os.path.join(staged, EXAMPLES_DIR, name))
        if source[0] != "url":
            _copy_runtime(source, os.path.join(staged, RUNTIME_DIR))
        with open(os.path.join(staged, "app.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(staged, out)  # replaces an empty folder too
    finally:
        shutil.rmtree(staging)
    return out


# What `effnet serve` answers: GET and HEAD of the folder's regular files, to a Host header of
# one of these names of this machine (with its port, or without one).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# Every answer's headers: no type sniffing, no referrer, and the page's Content-Security-Policy
# (`_content_security_policy`). Files may be stored but are revalidated on every use (their
# ETag), so a rewritten app is seen at once; error answers are not stored.
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))
FILE_CACHING = "no-cache"
ERROR_CACHING = "no-store"
_APP_JSON_LIMIT = 16 << 20  # bytes of app.json read for the runtime's origin (a real one: KBs)
_ORIGIN = re.compile(r"https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")
_REFUSED_NAME = re.compile(r"%(?:2f|5c)|[\\\x00-\x1f\x7f]", re.IGNORECASE)


def _origin(url: Any) -> str | None:
    """The origin (scheme://host[:port]) of an http(s) URL, or None (a relative path too)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except (TypeError, ValueError, AttributeError):
        return None
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    return origin if _ORIGIN.fullmatch(origin) else None


def _content_security_policy(folder: str) -> str:
    """What the page may load: its own files, the runtime from the pinned CDN or from the
    http(s) mirror its app.json names (read when the server starts), WebAssembly, and images
    from the user's files and camera; no inline script, eval, frames, forms or plugins."""
    origins = [_origin(DEFAULT_RUNTIME)]
    try:
        with open(os.path.join(folder, "app.json"), "rb") as f:
            text = f.read(_APP_JSON_LIMIT + 1)
        if len(text) <= _APP_JSON_LIMIT:
            origins.append(_origin(json.loads(text)["runtime"]["url"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no readable app.json: the pinned CDN only (the page says what failed)
    sources = " ".join(["'self'", *dict.fromkeys(origin for origin in origins if origin)])
    return "; ".join(("default-src 'none'", f"script-src {sources} 'wasm-unsafe-eval'",
                      f"connect-src {sources}", "img-src 'self' blob: data:",
                      "media-src 'self' blob: mediastream:", "style-src 'self'",
                      "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"))


def _content_type(path: str) -> str:
    """The type browsers need (module scripts and WebAssembly are checked; nosniff), text in
    UTF-8."""
    kind = (MIME_TYPES.get(os.path.splitext(path)[1].lower())
            or mimetypes.guess_type(path)[0] or "application/octet-stream")
    return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind


class _AppServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that knows its folder (a real path), the Host values it answers
    to (`hosts`, said in `names`) and the page's Content-Security-Policy."""

    def __init__(self, address: tuple[str, int], folder: str) -> None:
        self.root = os.path.realpath(folder)
        self.policy = _content_security_policy(self.root)
        super().__init__(address, _Handler)
        host, port = address[0], self.server_address[1]
        names = list(LOOPBACK_NAMES)
        name = f"[{host}]" if ":" in host else host
        if host not in ("", "0.0.0.0", "::") and name not in names:  # another address given
            names.append(name)
        self.hosts = frozenset(f"{name}{suffix}".lower() for name in names
                               for suffix in ("", f":{port}"))
        self.names = f"{', '.join(names)} (port {port} or none)"


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of the regular files inside the served folder (symlinks resolved: one
    that leads out is not found), with the types module scripts and WebAssembly need; no
    listings, no dot files, no other Host, no other method. Every answer carries
    SECURITY_HEADERS and the page's CSP; errors are short text. Logs errors only."""

    server: _AppServer
    timeout = 60  # s: an idle connection does not hold a thread for ever

    def version_string(self) -> str:
        return "effnet-serve"  # not the Python version

    def parse_request(self) -> bool:
        """The base class's parsing, then the Host check: a request for another name (a page
        elsewhere whose name was made to point here: DNS rebinding) gets 421."""
        if not super().parse_request():
            return False
        hosts = self.headers.get_all("Host", [])
        if len(hosts) == 1 and hosts[0].strip().lower() in self.server.hosts:
            return True
        if not hosts and self.request_version == "HTTP/1.0":  # Host is optional before 1.1
            return True
        self._refuse(421, f"this server answers to Host {self.server.names} only")
        return False

    def do_GET(self) -> None:  # noqa: N802 (the base's names)
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def _not_allowed(self) -> None:
        self._refuse(405, "only GET and HEAD", ("Allow", "GET, HEAD"))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _resolve(self) -> tuple[int, str]:
        """(200, the real path of the regular file the request names), (301, the folder's
        URL with its slash) or (404, ""): a name with an encoded slash or backslash, a
        backslash, a control character or a part that starts with a dot (`..` too), a path
        that leads out of the folder (a symlink), a folder without index.html, anything but
        a regular file."""
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if not path.startswith("/") or _REFUSED_NAME.search(path):
            return 404, ""
        try:
            name = urllib.parse.unquote(path, errors="strict")
        except UnicodeDecodeError:
            return 404, ""
        parts = [part for part in name.split("/") if part]
        if _REFUSED_NAME.search(name) or any(part.startswith(".") for part in parts):
            return 404, ""
        root = self.server.root
        real = os.path.realpath(os.path.join(root, *parts))
        if os.path.isdir(real):
            index = os.path.realpath(os.path.join(real, "index.html"))
            if not name.endswith("/") and self._inside(index) and os.path.isfile(index):
                query = self.path[len(path):]
                return 301, "/" + "/".join(urllib.parse.quote(p) for p in parts) + "/" + query
            real = index
        return (200, real) if self._inside(real) and os.path.isfile(real) else (404, "")

    def _inside(self, real: str) -> bool:
        return os.path.commonpath([self.server.root, real]) == self.server.root

    def _answer(self, body: bool) -> None:
        """The file, 304 when the client's copy is current (its ETag), or 404."""
        code, found = self._resolve()
        if code == 301:
            self.send_response(301)
            self.send_header("Location", found)
            self.send_header("Content-Length", "0")
            self.send_header("Cache-Control", ERROR_CACHING)
            self.end_headers()
            return
        if code != 200:
            self._refuse(404, "not found")
            return
        try:  # no symlink at the last step, and a FIFO does not block the open
            fd = os.open(found, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            self._refuse(404, "not found")
            return
        with open(fd, "rb") as f:
            status = os.fstat(f.fileno())
            if not stat.S_ISREG(status.st_mode):
                self._refuse(404, "not found")
                return
            tag = f'"{status.st_ino:x}-{status.st_mtime_ns:x}-{status.st_size:x}"'
            current = self.headers.get("If-None-Match", "")
            if tag in (t.strip() for t in current.split(",")):
                self.send_response(304)
                self.send_header("ETag", tag)
                self.send_header("Cache-Control", FILE_CACHING)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", _content_type(found))
            self.send_header("Content-Length", str(status.st_size))
            self.send_header("Last-Modified", self.date_time_string(int(status.st_mtime)))
            self.send_header("ETag", tag)
            self.send_header("Cache-Control", FILE_CACHING)
            self.end_headers()
            if body:
                try:
                    shutil.copyfileobj(f, self.wfile)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client left: not an error here

    def _refuse(self, code: int, text: str, *headers: tuple[str, str]) -> None:
        """A short text answer (none to HEAD); the connection is closed after it."""
        data = f"{code} {HTTPStatus(code).phrase}: {text}\n".encode("utf-8", "replace")
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", ERROR_CACHING)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """The base class's errors (a malformed request, an overlong line, an unknown
        method) as short text too."""
        self._refuse(code, (message or HTTPStatus(code).phrase)[:200])

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        self.send_header("Content-Security-Policy", self.server.policy)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        if len(args) > 1 and str(args[1]).isdigit() and int(args[1]) < 400:
            return  # successful requests are not news
        super().log_message(format, *args)


def server(folder: str | os.PathLike, port: int = 8000,
           host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """An HTTP server of an app folder on `host`:`port` (0: a free port), bound, not yet
    serving (`serve_forever()`; its `server_address` says where). It answers GET and HEAD of
    the folder's regular files only (see `_Handler`), to a Host of LOOPBACK_NAMES or `host`."""
    folder = os.fspath(folder)
    if not os.path.isfile(os.path.join(folder, "index.html")):
        raise MissingFile(f"{folder!r} is not an app folder (no index.html); make one "
                          "with `effnet app --model=M.tflite --out=DIR`")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise InvalidArgument(f"port={port!r}; accepted: 0 (any free port) to 65535")
    try:
        return _AppServer((host, port), folder)
    except OSError as err:
        raise InvalidArgument(f"cannot serve on {host}:{port} ({err.strerror}); pass another port, "
                              "or 0 for any free one") from None


def serve(folder: str | os.PathLike, port: int = 8000, host: str = "127.0.0.1") -> None:
    """Serve an app folder on `host`:`port` until interrupted; print its URL first."""
    httpd = server(folder, port, host)
    url = f"http://{host}:{httpd.server_address[1]}/"
    print(f"serving {os.fspath(folder)} at {url} (Ctrl-C stops)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
