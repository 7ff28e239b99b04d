"""`effnet app` and `effnet serve`: a static web page that classifies images in the browser
with a .tflite model, and that page served on 127.0.0.1."""

from __future__ import annotations

import json
import os

from absl.app import UsageError

from keras_effnet.cli.options import changed
from keras_effnet.cli.reports import stage

APP_FLAGS = {
    "model": "the .tflite file with image-classifier metadata to classify with (required)",
    "out": "the new (or empty) folder to write the web app into (required)",
    "examples": "a folder of images the web app shows as its gallery",
    "runtime": "where the web app loads @mediapipe/tasks-vision from: an http(s) URL, or a local "
               "copy (its npm install folder or `npm pack` tarball) copied into the app so it "
               "works offline (default: its public CDN, by the pinned version)",
    "top_k": "labels shown per image", "serve": "then serve the app on 127.0.0.1 (Ctrl-C stops)",
    "port": "with --serve: the port on 127.0.0.1 (0: any free port)"}


def app(*, model: str | None = None, out: str | None = None, examples: str | None = None,
        runtime: str | None = None, top_k: int = 5, serve: bool = False,
        port: int = 8000) -> str:
    """Write a static web app that classifies images in the browser with a .tflite model
    (MediaPipe Tasks, WebAssembly: nothing runs on a server); --serve serves it.

    The folder holds index.html, its script and style, app.json (the model's name,
    description and labels from its metadata), the model and the --examples images. The page
    loads the pinned @mediapipe/tasks-vision from its public CDN, or from the app folder with
    --runtime=DIR (a local npm install or `npm pack` tarball: works offline)."""
    from keras_effnet.export.webapp import make_app, serve as serve_app

    if not model or not out:
        raise UsageError("effnet app needs --model=M.tflite and --out=DIR")
    if not serve and changed(app, port=port):
        raise UsageError("--port applies with --serve")
    folder = make_app(model, out, examples=examples, runtime=runtime, top_k=top_k)
    with open(os.path.join(folder, "app.json"), encoding="utf-8") as f:
        written = json.load(f)
    labels = (f"{len(written['labels'])} labels" if written["labels"]
              else "no labels: the page shows class indices")
    stage("app", f"wrote {folder}: {written['name']} ({written['model']}, {labels}, "
                 f"{len(written['examples'])} examples)")
    source = written["runtime"]
    stage("app", f"runtime: {source['package']}@{source['version']} "
                 + (f"from {source['url']} (the page needs the network)"
                    if source["url"].startswith(("http://", "https://"))
                    else f"copied into {os.path.join(folder, source['url'])} (works offline)"))
    if serve:
        serve_app(folder, port)
    else:
        stage("app", f"try it: effnet serve {folder}")
    return folder


SERVE_FLAGS = {"port": "the port to serve on, on 127.0.0.1 (0: any free port)"}


def serve(folders: list[str], *, port: int = 8000) -> None:
    """Serve a web app folder (`effnet app`) on 127.0.0.1 and print its URL; Ctrl-C stops."""
    from keras_effnet.export.webapp import serve as serve_app

    if len(folders) != 1:
        raise UsageError("give one app folder: effnet serve DIR [--port=N]; got "
                         f"{' '.join(folders) or 'none'}")
    serve_app(folders[0], port)
