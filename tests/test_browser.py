"""The web app of `effnet app` in a real browser: headless Chromium (Debian's `chromium`) opens
the page served on loopback as a user would, through its `?images=` path, and each label and
score must equal MediaPipe's Python client's on the same image files, called as
docs/shipping.md shows (the input contract's centre square as the region of interest).

Set-up (`make test`, the Makefile's `browser` target): Debian's chromium, and the pinned
`@mediapipe/tasks-vision` `npm pack`ed into .cache/ (never committed). The browser
(tests/chromium_client.py) resolves no host but 127.0.0.1 (its OFFLINE), so a page reaches
nothing off this machine.

Default tier: the main job's int8 lite0 on 64 validation images and a non-image, the docs'
screenshot, a logits model's softmax and the centre crop on a small model, a model that fails
to load and an unreachable runtime, and `effnet app`'s checks (no browser). Large tier: the
main job's float32 and int8 files on 400 images. tests/test_clients.py holds the real ImageNet
Lite0 on real photos, a 9000-px one included, to the labels of Keras and `effnet predict`.
"""

import io
import json
import os
import select
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from chromium_client import Browser, app_url
from conftest import effnet
from keras_effnet.export.webapp import (DEFAULT_RUNTIME, RUNTIME_FILES, TASKS_VISION_VERSION,
                                        make_app, server)

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "images" / "browser_app.png"
LABELS = ["red fox", "bicycle-built-for-two", "crème brûlée"]
PAGE_TIMEOUT = 120  # s: a page's results, however slow the host (about 2 s here)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small classifier as a .tflite file with metadata and labels, and as a bare file; and
    `logits.tflite`, a model whose logits are 10 x the mean of each colour channel (0..1)."""
    import keras

    from keras_effnet.export import TFLiteMetadata, to_tflite, with_metadata

    folder = tmp_path_factory.mktemp("tiny")
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")], name="tiny")
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    to_tflite(model, folder / "bare.tflite", metadata=False, verify_data=pixels)
    data, _ = with_metadata((folder / "bare.tflite").read_bytes(), TFLiteMetadata(
        name="tiny", description="A tiny classifier of 16x16 RGB images"), labels=LABELS)
    (folder / "m.tflite").write_bytes(data)
    logits = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),
                               keras.layers.GlobalAveragePooling2D(),
                               keras.layers.Dense(3, name="logits")], name="tiny_logits")
    logits.layers[-1].set_weights([10 * np.eye(3, dtype="float32"), np.zeros(3, "float32")])
    to_tflite(logits, folder / "logits.tflite", verify_data=pixels, labels=LABELS,
              metadata=TFLiteMetadata(description="10 x the mean of each colour, as logits"))
    return folder


def _png_folder(folder, pixels, broken=True, framed=False):
    """The images as PNG files; `framed`: each inside a reflected frame (see `_framed`)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(pixels):
        Image.fromarray(_framed(image) if framed else image).save(folder / f"{i:03d}.png")
    if broken:
        (folder / "broken.png").write_bytes(b"this is not a PNG\n")
    return folder


def _framed(image):
    """A square image inside a reflected frame whose input-contract crop is the image itself,
    pixel for pixel: 74 px around 64 (int(74 x 0.875) = 64, 5 px each side). Every client then
    feeds the model the image as it is, with no resampling to tell them apart, and a client
    that took the whole file would see the frame."""
    from keras_effnet.export.contract import CENTRE_CROP

    side = image.shape[0]
    outer = next(n for n in range(side, 2 * side) if int(n * CENTRE_CROP) == side)
    before = (outer - side) // 2
    return np.pad(image, ((before, outer - side - before), (before, outer - side - before),
                          (0, 0)), mode="reflect")


def _validation(count):
    """`count` of the main job's validation images (its data, its size) as whole-number pixels
    (what the PNG files, MediaPipe's Python client and Keras get), and their classes."""
    from keras_effnet.cli import QUICKSTART_DEFAULTS
    from keras_effnet.data import examples

    images, targets = examples(QUICKSTART_DEFAULTS["data"], 64, count, split="validation")
    return np.clip(np.round(images), 0, 255).astype("uint8"), targets


def _wait_for(page, expression, timeout=30):
    """The value of `expression` in the page once it is truthy (bounded wait)."""
    deadline = time.monotonic() + timeout
    while not (value := page.evaluate(expression)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


@contextmanager
def served_by_effnet_app(*args):
    """`effnet app ... --serve --port=0`, as a user runs it: yields the URL it prints; the
    server is ended by its process id."""
    exe = shutil.which("effnet") or os.path.join(os.path.dirname(sys.executable), "effnet")
    process = subprocess.Popen([exe, "app", *args, "--serve", "--port=0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    said, serving = [], threading.Event()

    def read():  # every line, so that the pipe never fills
        for line in process.stdout:
            said.append(line)
            if line.startswith("serving "):
                serving.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not serving.wait(0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("effnet app --serve printed no URL:\n" + "".join(said))
        line = next(line for line in said if line.startswith("serving "))
        yield line.split(" at ")[1].split()[0], "".join(said)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def served(folder):
    """An app folder on 127.0.0.1 from a server thread of this process (shut down after):
    `effnet serve`'s server, so the page runs under its Content-Security-Policy."""
    httpd = server(folder, 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _agreement(path, results, names, files):
    """Each page answer beside MediaPipe's Python client's on the same image files (as
    docs/shipping.md calls it: the centre square as the region of interest): the same top
    score (within 1e-3) and label; where two labels tie for the top score (an int8 output
    has 256 levels), the two clients may list them in either order. Times are in 0.1 ms."""
    from keras_effnet.export.mediapipe_client import classify_files

    expected = classify_files(str(path), [str(file) for file in files])
    assert [r["image"] for r in results] == names
    for result, answer in zip(results, expected):
        assert "error" not in result, result
        top = answer[0][2]
        tied = [label for _, label, score in answer if score == top]
        assert result["label"] == answer[0][1] or (len(tied) > 1 and result["label"] in tied), (
            result, answer[:2])
        assert abs(result["score"] - top) <= 1e-3, (result, answer[:2])
        assert result["ms"] >= 0 and round(result["ms"], 1) == result["ms"], result


def _keras_top1(model, pixels):
    return np.asarray(model.predict(pixels.astype("float32"), verbose=0)).argmax(-1)


def _near_keras(labels, classes, targets, model, pixels):
    """The page's accuracy within 2 points of the Keras model's, and never closer than 2
    images: int8 flips a near-tie now and then (the main job's verification allows it), and
    on 64 images 2 points would be less than one. Returns the page's accuracy."""
    page = np.mean([classes.index(label) for label in labels] == targets)
    keras_accuracy = np.mean(_keras_top1(model, pixels) == targets)
    assert abs(page - keras_accuracy) <= max(0.02, 2 / len(targets)), (page, keras_accuracy)
    return page


# -------------------------------------------------------------- the main job's model in a browser


@pytest.mark.xdist_group("trained-lite0")
def test_page_answers_as_mediapipe_python_does(quickstart_run, quickstart_model, runtime,
                                               chromium, tmp_path):
    """The main job's int8 file through `effnet app --serve` on 64 validation images (each
    framed: the page must crop it out) and a non-image: the page's label and score of each
    image equal MediaPipe's Python client's, its accuracy is near the Keras model's
    (`_near_keras`), the non-image gets an error entry of its own; the page shows the file's
    metadata.
    Also writes the docs' screenshot."""
    _, run = quickstart_run
    pixels, targets = _validation(64)
    folder = _png_folder(tmp_path / "photos", pixels, framed=True)
    names = [f"examples/{i:03d}.png" for i in range(len(pixels))]
    classes = json.loads((run / "summary.json").read_text())["data"]["class_names"]
    with served_by_effnet_app(f"--model={run / 'model_int8.tflite'}", f"--out={tmp_path / 'app'}",
                              f"--examples={folder}", f"--runtime={runtime}") as (url, said), \
            Browser(chromium) as browser:
        assert f"{len(classes)} labels, 65 examples" in said and "works offline" in said
        page = browser.open(app_url(url, names[:40] + ["examples/broken.png"] + names[40:]))
        results = page.results(PAGE_TIMEOUT)
        assert page.evaluate("document.getElementById('name').textContent") == (
            "efficientnet-lite0")
        assert page.evaluate("[...document.querySelectorAll('#labels-list li')]"
                             ".map(li => li.textContent)") == classes
        shown = page.evaluate("document.getElementById('description').textContent")
        assert "int8" in shown and f"{len(classes)} classes" in shown

        # the docs' picture: a few images and the non-image, as a reader sees them
        few = browser.open(app_url(url, ["examples/broken.png", *names[:5]]))
        assert len(few.results(PAGE_TIMEOUT)) == 6
        shot = few.screenshot(tmp_path / "shot.png")
    from PIL import Image

    SCREENSHOT.parent.mkdir(exist_ok=True)
    staged = SCREENSHOT.with_suffix(".tmp.png")  # 256 colours: a quarter of the bytes
    Image.open(shot).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
        staged, optimize=True)
    os.replace(staged, SCREENSHOT)
    assert SCREENSHOT.read_bytes()[16:24] == (900).to_bytes(4, "big") + (700).to_bytes(4, "big")

    broken = results.pop(40)
    assert broken == {"image": "examples/broken.png",
                      "error": "examples/broken.png: not a readable image (image/png)"}
    _agreement(run / "model_int8.tflite", results, names,
               [folder / f"{i:03d}.png" for i in range(len(pixels))])
    page_accuracy = _near_keras([r["label"] for r in results], classes, targets,
                                quickstart_model, pixels)
    assert page_accuracy >= 0.9


@pytest.mark.large
@pytest.mark.xdist_group("trained-lite0")
@pytest.mark.parametrize("artifact", ["model_float32.tflite", "model_int8.tflite"])
def test_page_answers_as_mediapipe_python_does_on_400_images(
        quickstart_run, quickstart_model, runtime, chromium, artifact, tmp_path):
    """Both files of the main job on all 400 validation images (framed): labels and scores
    equal to MediaPipe's Python client's, accuracy within 2 points of the Keras model's."""
    _, run = quickstart_run
    pixels, targets = _validation(400)
    make_app(run / artifact, tmp_path / "app", runtime=runtime)
    folder = _png_folder(tmp_path / "app" / "images", pixels, broken=False,  # no gallery
                         framed=True)
    names = [f"images/{i:03d}.png" for i in range(len(pixels))]
    with served(tmp_path / "app") as url, Browser(chromium) as browser:
        results = browser.open(app_url(url, names)).results(PAGE_TIMEOUT * 3)
    _agreement(run / artifact, results, names,
               [folder / f"{i:03d}.png" for i in range(len(pixels))])
    classes = json.loads((run / "summary.json").read_text())["data"]["class_names"]
    _near_keras([r["label"] for r in results], classes, targets, quickstart_model, pixels)


# -------------------------------------------------------------- the contracts in the page


def _two_colour_image(width, height, inside, outside):
    """A `width` x `height` image: `inside` on the input contract's square, `outside` around."""
    from keras_effnet.export.contract import crop_box

    left, top, right, bottom = crop_box(width, height)
    image = np.empty((height, width, 3), "uint8")
    image[...] = outside
    image[round(top * height):round(bottom * height), round(left * width):round(right * width)] = (
        inside)
    return image


@pytest.mark.xdist_group("tiny-app")  # one worker makes `tiny` once
def test_page_crops_the_centre_square_and_softmaxes_logits(tiny, runtime, chromium, tmp_path):
    """A logits model (10 x each channel's mean) on images whose centre square is dark red and
    whose rest is blue, blue on average: the page classifies the square alone, "red fox"
    (label 0) for every shape, its score the softmax of the square's logits (as the LiteRT
    interpreter computes them, and MediaPipe's Python client as docs/shipping.md calls it),
    and shows the top_k after the softmax."""
    from PIL import Image

    from keras_effnet.export.contract import shown_scores
    from keras_effnet.export.mediapipe_client import classify_files
    from keras_effnet.export.runtime import TFLiteRunner

    red, blue = (60, 0, 0), (0, 0, 255)
    sizes = [(48, 24), (24, 60), (37, 37), (300, 41)]
    (tmp_path / "images").mkdir()
    for width, height in sizes:
        image = _two_colour_image(width, height, red, blue)
        assert image.mean((0, 1)).argmax() == 2  # the whole image: "crème brûlée"
        Image.fromarray(image).save(tmp_path / "images" / f"{width}x{height}.png")
    names = [f"images/{width}x{height}.png" for width, height in sizes]
    square = np.full((1, 16, 16, 3), red, "float32")
    expected = shown_scores(TFLiteRunner(str(tiny / "logits.tflite"))(square), "logits")[0]
    assert expected.argmax() == 0

    out = make_app(tiny / "logits.tflite", tmp_path / "app", runtime=runtime, top_k=2)
    assert json.loads((tmp_path / "app" / "app.json").read_text())["output"] == "logits"
    shutil.copytree(tmp_path / "images", tmp_path / "app" / "images")
    with served(out) as url, Browser(chromium) as browser:
        page = browser.open(app_url(url, names))
        results = page.results(PAGE_TIMEOUT)
        shown = page.evaluate("[...document.querySelectorAll('#cards > li')].map(card => "
                              "[...card.querySelectorAll('.score')].map(s => +s.textContent))")
    assert [r["label"] for r in results] == [LABELS[0]] * len(sizes), results
    for result in results:
        assert abs(result["score"] - expected[0]) <= 1e-5, (result, expected)
    assert shown == [[round(float(p), 3) for p in sorted(expected)[::-1][:2]]] * len(sizes)
    for answer in classify_files(str(tiny / "logits.tflite"),
                                 [str(tmp_path / "app" / name) for name in names], top_k=2):
        assert [index for index, _, _ in answer] == list(np.argsort(-expected)[:2])
        np.testing.assert_allclose([score for _, _, score in answer],
                                   np.sort(expected)[::-1][:2], atol=1e-5)


# -------------------------------------------------------------- errors in the page


@pytest.mark.xdist_group("tiny-app")  # one worker makes `tiny` once
def test_page_reports_a_broken_model_and_an_unreachable_runtime(tiny, runtime, chromium,
                                                                tmp_path):
    """A model file that does not load: the page says so ({"error"} for `?images=`) and stays
    usable (an example clicked afterwards gets its own error card). The default runtime (the
    public CDN) with no network: the page names the URL it could not load."""
    examples = _png_folder(tmp_path / "ex", np.zeros((1, 16, 16, 3), "uint8"), broken=False)
    make_app(tiny / "m.tflite", tmp_path / "broken", examples=examples, runtime=runtime)
    (tmp_path / "broken" / "m.tflite").write_bytes(b"not a model")
    make_app(tiny / "m.tflite", tmp_path / "cdn")
    with Browser(chromium) as browser:
        with served(tmp_path / "broken") as url:
            page = browser.open(app_url(url, ["examples/000.png"]))
            error = page.results(PAGE_TIMEOUT)["error"]
            assert error.startswith("the model m.tflite failed to load"), error
            assert page.evaluate("document.getElementById('status').className") == "error"
            page.evaluate("document.querySelector('#gallery button').click()")
            cards = _wait_for(page, "[...document.querySelectorAll('#cards .error')]"
                                    ".map(e => e.textContent)")
            assert cards == [f"not classified: {error}"]
        with served(tmp_path / "cdn") as url:
            error = browser.open(app_url(url, ["a.png"])).results(PAGE_TIMEOUT)["error"]
            assert error.startswith(f"the MediaPipe runtime did not load from {DEFAULT_RUNTIME}/")
            assert error.endswith("to run without the network, write the app with `effnet app "
                                  "--runtime=DIR`: a local npm install or `npm pack` tarball "
                                  f"of @mediapipe/tasks-vision@{TASKS_VISION_VERSION}"), error


# -------------------------------------------------------------- effnet app, no browser


@pytest.mark.xdist_group("tiny-app")  # one worker makes `tiny` once
def test_app_writes_the_page_the_model_and_what_its_metadata_says(tiny, runtime, tmp_path):
    """The folder: the page, the model, the examples (image files only), app.json with the
    name, description and labels the file's metadata holds (as MediaPipe's own schema module
    decodes them), the file's output kind and the input contract's crop, and the runtime:
    the pinned CDN URL by default, copied in from a tarball, an extracted `npm pack` or an npm
    install folder."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

    from keras_effnet.export.tflite_metadata import METADATA_BUFFER, model_root, read_metadata

    examples = _png_folder(tmp_path / "ex", np.zeros((2, 8, 8, 3), "uint8"), broken=False)
    (examples / "notes.txt").write_text("not an example")
    out = make_app(tiny / "m.tflite", tmp_path / "app", examples=examples, top_k=2)
    assert out == str(tmp_path / "app")
    assert sorted(os.listdir(out)) == ["app.js", "app.json", "examples", "index.html",
                                       "m.tflite", "style.css"]
    config = json.loads((tmp_path / "app" / "app.json").read_text())
    root = model_root(str(tiny / "m.tflite"))
    entry = next(root.Metadata(i) for i in range(root.MetadataLength())
                 if root.Metadata(i).Name() == METADATA_BUFFER.encode())
    decoded = schema.ModelMetadataT.InitFromPackedBuf(
        root.Buffers(entry.Buffer()).DataAsNumpy().tobytes(), 0)
    assert read_metadata(str(tiny / "m.tflite")) == {
        key: getattr(decoded, key).decode() if getattr(decoded, key) else None
        for key in ("name", "description", "version", "author", "license")}
    assert config == {
        "name": "tiny", "description": decoded.description.decode(), "version": "1",
        "author": None, "license": None, "labels": LABELS,
        "input": {"size": [16, 16], "dtype": "float32"}, "output": "probabilities",
        "crop": 0.875, "model": "m.tflite", "top_k": 2,
        "runtime": {"package": "@mediapipe/tasks-vision", "version": TASKS_VISION_VERSION,
                    "url": f"https://cdn.jsdelivr.net/npm/@mediapipe/tasks-vision@"
                           f"{TASKS_VISION_VERSION}"},
        "examples": ["examples/000.png", "examples/001.png"]}
    assert (tmp_path / "app" / "m.tflite").read_bytes() == (tiny / "m.tflite").read_bytes()
    assert read_metadata(str(tiny / "bare.tflite")) is None

    with tarfile.open(runtime) as archive:
        archive.extractall(tmp_path / "extracted", filter="data")
    install = tmp_path / "project" / "node_modules" / "@mediapipe"
    install.mkdir(parents=True)
    shutil.copytree(tmp_path / "extracted" / "package", install / "tasks-vision")
    for i, source in enumerate([runtime, tmp_path / "extracted", tmp_path / "extracted" /
                                "package", tmp_path / "project", install / "tasks-vision"]):
        out = tmp_path / f"offline{i}"
        make_app(tiny / "m.tflite", out, runtime=source)
        assert json.loads((out / "app.json").read_text())["runtime"]["url"] == "runtime"
        assert sorted(str(p.relative_to(out / "runtime")) for p in (out / "runtime").rglob("*")
                      if p.is_file()) == sorted(RUNTIME_FILES)
        assert ((out / "runtime" / "wasm" / "vision_wasm_internal.wasm").read_bytes()[:4]
                == b"\0asm")
    make_app(tiny / "m.tflite", tmp_path / "mirror", runtime="https://example.org/tv/")
    assert json.loads((tmp_path / "mirror" / "app.json").read_text())["runtime"]["url"] == (
        "https://example.org/tv")
    (tmp_path / "empty").mkdir()
    make_app(tiny / "m.tflite", tmp_path / "empty")  # an empty folder is taken
    assert (tmp_path / "empty" / "index.html").exists()


def _wrong_version_tarball(path):
    """A tarball with the runtime's file names whose package.json is another version."""
    with tarfile.open(path, "w:gz") as archive:
        for name in RUNTIME_FILES:
            data = (json.dumps({"name": "@mediapipe/tasks-vision", "version": "0.10.22"})
                    if name == "package.json" else "x").encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.xdist_group("tiny-app")  # one worker makes `tiny` once
def test_app_refuses_bad_input_and_writes_nothing(tiny, runtime, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    (tmp_path / "nothing").mkdir()
    model = str(tiny / "m.tflite")
    cases = [
        (dict(model=tmp_path / "none.tflite"), FileNotFoundError, "model file not found"),
        (dict(model=tiny / "bare.tflite"), ValueError, "`effnet export --metadata`"),
        (dict(model=tmp_path / "taken" / "mine.txt"), ValueError, "accepted: a .tflite file"),
        (dict(out=tmp_path / "taken"), ValueError, "exists and is not an empty folder"),
        (dict(out=tmp_path / "taken" / "mine.txt"), ValueError, "is not an empty folder"),
        (dict(out=tmp_path / "no" / "such" / "app"), FileNotFoundError,
         "output folder does not exist"),
        (dict(runtime=tmp_path / "nothing"), ValueError, "holds no @mediapipe/tasks-vision"),
        (dict(runtime=tmp_path / "missing"), FileNotFoundError, "no such file or folder"),
        (dict(runtime=tmp_path / "taken" / "mine.txt"), ValueError, "not a tarball"),
        (dict(runtime=_wrong_version_tarball(tmp_path / "old.tgz")), ValueError,
         "is @mediapipe/tasks-vision@0.10.22; the app is tested with "
         f"@mediapipe/tasks-vision@{TASKS_VISION_VERSION} only"),
        (dict(examples=tmp_path / "missing"), FileNotFoundError, "no such folder"),
        (dict(examples=tmp_path / "nothing"), ValueError, "holds no image files"),
        (dict(top_k=0), ValueError, "top_k=0; accepted: an integer >= 1"),
    ]
    for given, error, message in cases:
        kwargs = {"model": model, "out": tmp_path / "app", **given}
        with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
            make_app(**kwargs)
    assert sorted(os.listdir(tmp_path)) == ["nothing", "old.tgz", "taken"]
    assert os.listdir(tmp_path / "taken") == ["mine.txt"]

    refused = effnet("app", f"--model={tiny / 'bare.tflite'}", f"--out={tmp_path / 'app'}")
    assert refused.returncode == 2 and "has no image-classifier metadata" in refused.stderr
    assert "`effnet export --metadata`" in refused.stderr
    for args, message in (
            ([f"--model={model}"], "effnet app needs --model=M.tflite and --out=DIR"),
            ([f"--model={model}", f"--out={tmp_path / 'taken'}"], "is not an empty folder"),
            ([f"--model={model}", f"--out={tmp_path / 'app'}", f"--runtime={tmp_path}"],
             "holds no @mediapipe/tasks-vision files"),
            ([f"--model={model}", f"--out={tmp_path / 'app'}", "--port=9"],
             "--port applies with --serve")):
        result = effnet("app", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    for args, message in (([str(tmp_path / "taken")], "is not an app folder (no index.html)"),
                          ([], "give one app folder"), (["a", "b"], "give one app folder")):
        result = effnet("serve", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "app").exists()


@pytest.mark.xdist_group("tiny-app")  # one worker makes `tiny` once
def test_serve_serves_an_app_on_loopback_with_the_types_browsers_need(tiny, runtime, tmp_path):
    """`effnet serve DIR` prints its URL; module scripts and WebAssembly get their types, and
    every answer nosniff and the page's CSP; another Host is refused (tests/test_serve.py has
    the rest)."""
    import urllib.error
    import urllib.request

    make_app(tiny / "m.tflite", tmp_path / "app", runtime=runtime)
    exe = shutil.which("effnet") or os.path.join(os.path.dirname(sys.executable), "effnet")
    process = subprocess.Popen([exe, "serve", str(tmp_path / "app"), "--port=0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert select.select([process.stdout], [], [], 60)[0], "effnet serve printed nothing"
        line = process.stdout.readline()
        assert line.startswith(f"serving {tmp_path / 'app'} at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        for path, kind in (("", "text/html"), ("app.js", "text/javascript"),
                           ("runtime/vision_bundle.mjs", "text/javascript"),
                           ("runtime/wasm/vision_wasm_internal.wasm", "application/wasm"),
                           ("app.json", "application/json")):
            with urllib.request.urlopen(url + path, timeout=10) as response:
                assert response.headers["Content-Type"].startswith(kind), path
                assert response.headers["X-Content-Type-Options"] == "nosniff", path
                assert "script-src 'self' https://cdn.jsdelivr.net 'wasm-unsafe-eval';" in (
                    response.headers["Content-Security-Policy"]), path
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, headers={"Host": "evil.example"}),
                                   timeout=10)
        assert refused.value.code == 421
    finally:
        process.terminate()
        process.wait(timeout=10)


# -------------------------------------------------------------- benchmarks/browser_latency.py

BENCHMARK = ROOT / "benchmarks" / "browser_latency.py"


def test_browser_latency_benchmark_help_and_bad_flags():
    help_ = subprocess.run([sys.executable, str(BENCHMARK), "--help"], capture_output=True,
                           text=True, timeout=120, cwd=ROOT)
    assert help_.returncode == 0 and "--rounds" in help_.stdout + help_.stderr
    bad = subprocess.run([sys.executable, str(BENCHMARK), "--modes=fp16"], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert bad.returncode != 0 and "unknown ['fp16']; accepted: fp32, int8" in bad.stderr


@pytest.mark.large
def test_browser_latency_benchmark_writes_every_runtime(runtime, chromium, tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARK), "--resolution=32", "--images=2",
                           "--warmup=1", "--rounds=1", f"--runtime={runtime}",
                           f"--results={tmp_path}"], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads((tmp_path / "browser_latency.json").read_text())["rows"]
    assert [(r["model"], r["runtime"], r["threads"]) for r in rows] == [
        (f"lite0 {mode}", runtime_name, threads) for mode in ("fp32", "int8")
        for runtime_name, threads in (("browser: MediaPipe Tasks web (WASM, CPU)", 1),
                                      ("MediaPipe Python (native)", None),
                                      ("LiteRT Python interpreter", 1),
                                      ("LiteRT Python interpreter", 2))]
    assert all(r["ms_median"] > 0 and r["images"] == 2 for r in rows)
    assert "Chromium" in (tmp_path / "browser_latency.md").read_text()
