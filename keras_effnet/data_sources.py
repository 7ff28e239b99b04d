"""Where a data spec's images come from: the embedded synthetic set, image folders and
ImageNet-format TFRecords, opened as splits (arrays, encoded files or records) and class
names. `keras_effnet.data` turns them into input pipelines; its docstring lists the specs.

A folder's files are checked by their first bytes when listed: files that are not
JPEG/PNG/GIF/BMP are skipped, named and counted. Without a validation split, every fifth
example (20 %) is held out. NumPy and the standard library until TFRecords are read.
"""

from __future__ import annotations

import functools
import glob
import math
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_effnet.errors import InvalidArgument, MissingFile

SHAPES = ("disk", "ring", "square", "frame", "triangle", "plus", "star", "half_disk",
          "ellipse", "two_dots")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
HOLDOUT_EVERY = 5  # without a validation split, every 5th example (20 %) is held out


# ----------------------------------------------------------------------------- synthetic set

def _shape_mask(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r = np.hypot(u, v)
    box = np.maximum(np.abs(u), np.abs(v))
    if kind == "disk":
        return r < 1
    if kind == "ring":
        return (r < 1) & (r > 0.55)
    if kind == "square":
        return box < 0.8
    if kind == "frame":
        return (box < 0.85) & (box > 0.5)
    if kind == "triangle":
        return (v > -0.55) & (v < 1 - math.sqrt(3) * np.abs(u))
    if kind == "plus":
        return ((np.abs(u) < 0.3) & (np.abs(v) < 0.95)) | ((np.abs(v) < 0.3) & (np.abs(u) < 0.95))
    if kind == "star":
        return r < 0.5 + 0.45 * np.cos(5 * np.arctan2(v, u))
    if kind == "half_disk":
        return (r < 1) & (v > 0)
    if kind == "ellipse":
        return np.hypot(u, v / 0.45) < 1
    if kind == "two_dots":
        return (np.hypot(u - 0.5, v) < 0.38) | (np.hypot(u + 0.5, v) < 0.38)
    raise ValueError(f"unknown shape {kind!r}")


def synthetic(num_images: int, resolution: int, *, num_classes: int = 10, seed: int = 0,
              split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Draw `num_images` RGB images (uint8, resolution²) of `num_classes` shape classes.

    The arrays are drawn once per process for each set of arguments and handed out as copies.

    Each image: a background of random colour and gradient, 0–3 clutter strokes, one shape of
    random colour (kept in contrast with the background), size (44–68 % of the image), position,
    rotation and aspect jitter, then Gaussian pixel noise. Deterministic for (seed, split);
    labels are balanced. A linear classifier on the pixels stays near chance (BUILD_NOTES.md).
    """
    images, labels = _draw(num_images, resolution, num_classes, seed, split)
    return images.copy(), labels.copy()


@functools.lru_cache(maxsize=8)
def _draw(num_images: int, resolution: int, num_classes: int, seed: int,
          split: str) -> tuple[np.ndarray, np.ndarray]:
    if not 2 <= num_classes <= len(SHAPES):
        raise InvalidArgument(f"num_classes={num_classes!r}; the synthetic set has 2 to "
                              f"{len(SHAPES)} classes")
    if resolution < 8 or num_images < 1:
        raise InvalidArgument(f"synthetic(num_images={num_images}, resolution={resolution}): "
                              "need at least 1 image of at least 8 px")
    split_id = {"train": 0, "validation": 1}.get(split)
    if split_id is None:
        raise InvalidArgument(f"split={split!r}; accepted: 'train' or 'validation'")
    rng = np.random.default_rng([seed, split_id])
    labels = rng.permutation(np.arange(num_images) % num_classes).astype("int32")
    grid = (np.arange(resolution, dtype="float32") + 0.5) / resolution
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    images = np.empty((num_images, resolution, resolution, 3), "uint8")
    for i, label in enumerate(labels):
        background = rng.uniform(0, 255, 3)
        slope = rng.uniform(-60, 60, 2)
        canvas = background + (xs - 0.5)[..., None] * slope[0] + (ys - 0.5)[..., None] * slope[1]
        for _ in range(rng.integers(0, 4)):  # clutter: thin random strokes
            x0, y0, angle = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, math.pi)
            dist = np.abs((xs - x0) * math.sin(angle) - (ys - y0) * math.cos(angle))
            along = np.abs((xs - x0) * math.cos(angle) + (ys - y0) * math.sin(angle))
            stroke = (dist < rng.uniform(0.006, 0.02)) & (along < rng.uniform(0.1, 0.35))
            canvas[stroke] = rng.uniform(0, 255, 3)
        colour = rng.uniform(0, 255, 3)
        while np.linalg.norm(colour - background) < 110:
            colour = rng.uniform(0, 255, 3)
        radius = rng.uniform(0.22, 0.34)
        cx, cy = rng.uniform(0.36, 0.64, 2)
        angle = rng.uniform(0, 2 * math.pi)
        stretch = rng.uniform(0.85, 1.15)
        dx, dy = (xs - cx) / radius, (ys - cy) / radius
        u = (dx * math.cos(angle) + dy * math.sin(angle)) * stretch
        v = (-dx * math.sin(angle) + dy * math.cos(angle)) / stretch
        canvas[_shape_mask(SHAPES[label], u, v)] = colour
        canvas += rng.normal(0, rng.uniform(2, 10), canvas.shape)
        images[i] = np.clip(canvas, 0, 255).astype("uint8")
    return images, labels


def write_image_folder(path: str, images: np.ndarray, labels: np.ndarray,
                       class_names: tuple[str, ...] = SHAPES, image_format: str = "png") -> None:
    """Write images as PATH/<class name>/<index>.<png|jpg>: a folder `folder:PATH` reads."""
    import tensorflow as tf

    if image_format not in ("png", "jpg"):
        raise InvalidArgument(f"image_format={image_format!r}; accepted: 'png' or 'jpg'")
    encode = tf.io.encode_png if image_format == "png" else tf.io.encode_jpeg
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = os.path.join(path, class_names[int(label)])
        os.makedirs(folder, exist_ok=True)
        tf.io.write_file(os.path.join(folder, f"{i:06d}.{image_format}"), encode(image))


# ----------------------------------------------------------------------------- specs and sources

@dataclass(frozen=True)
class DataSpec:
    kind: str  # "synthetic" | "folder" | "tfrecord"
    location: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        text = self.kind + (f":{self.location}" if self.location else "")
        return text + (f"?{urllib.parse.urlencode(self.options)}" if self.options else "")

    def absolute(self) -> "DataSpec":
        """The same spec with a local path made absolute (URLs such as gs:// as they are):
        what a run records, so that its data is found from any working directory."""
        if not self.location or "://" in self.location:
            return self
        return DataSpec(self.kind, os.path.abspath(self.location), self.options)


_OPTIONS = {"synthetic": {"train", "validation", "seed", "classes"},
            "folder": set(), "tfrecord": {"label_offset", "classes"}}


def parse_spec(text: str | DataSpec) -> DataSpec:
    """Parse 'synthetic', 'folder:PATH' or 'tfrecord:GLOB' (with '?key=value' options)."""
    if isinstance(text, DataSpec):
        return text
    if not isinstance(text, str) or not text:
        raise InvalidArgument(f"data spec {text!r}; accepted: 'synthetic', 'folder:PATH' or "
                              "'tfrecord:GLOB'")
    body, _, query = text.partition("?")
    kind, _, location = body.partition(":")
    if kind not in _OPTIONS:
        raise InvalidArgument(f"unknown data spec {text!r}; accepted: 'synthetic', 'folder:PATH' "
                              "or 'tfrecord:GLOB'")
    if kind != "synthetic" and not location:
        raise InvalidArgument(f"data spec {text!r} names no path; write '{kind}:PATH'")
    options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - _OPTIONS[kind]
    if unknown:
        raise InvalidArgument(f"data spec {text!r}: unknown option(s) {sorted(unknown)}; accepted "
                              f"for {kind}: {sorted(_OPTIONS[kind]) or 'none'}")
    for key, value in options.items():
        if not value.lstrip("-").isdigit():
            raise InvalidArgument(f"data spec {text!r}: {key}={value!r} is not an integer")
    return DataSpec(kind, location, options)


def check_spec(spec: str | DataSpec) -> DataSpec:
    """Check a data spec before any model work, in milliseconds and without TensorFlow: it
    parses; a folder exists and has class sub-folders (the same ones in its train and
    validation splits); TFRecord files match. Only `load` reads the images and records.
    Returns the parsed spec; raises InvalidArgument or MissingFile naming the folder or
    pattern and what is wrong.

    Example:
        >>> check_spec("folder:photos")  # photos/*.jpg, no class folders
        Traceback (most recent call last):
        InvalidArgument: image folder 'photos' has no class sub-folders (its 12 image(s) lie ...
    """
    spec = parse_spec(spec)
    if spec.kind == "folder":
        root = spec.location
        if not os.path.isdir(root):
            raise MissingFile(f"image folder not found: {root!r}" + (
          " (a file, not a folder)" if os.path.exists(root) else ""))
        split_dirs = _split_folders(root)
        classes = {split: _class_folders(folder) for split, folder in (
            split_dirs.items() if len(split_dirs) == 2 else [("all", root)])}
        for split, names in classes.items():
            if not names:
                raise _no_classes(split_dirs.get(split, root))
        if len(classes) == 2 and classes["train"] != classes["validation"]:
            raise InvalidArgument(f"{root!r}: train and validation have different class folders "
                                  f"({classes['train']} vs {classes['validation']})")
    elif spec.kind == "tfrecord":
        _tfrecord_files(spec.location)
    return spec


@dataclass
class Split:
    """One split of a source: in-memory arrays, encoded-file paths, or TFRecord files."""

    size: int
    arrays: tuple[np.ndarray, np.ndarray] | None = None
    files: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    holdout: str | None = None  # for TFRecords without a split: "keep" or "drop" every 5th


def _synthetic_source(spec: DataSpec, resolution: int) -> tuple[dict[str, Split], list[str], list]:
    opts = {k: int(v) for k, v in spec.options.items()}
    classes = opts.get("classes", 10)
    splits = {}
    for split, default in (("train", 2000), ("validation", 500)):
        arrays = synthetic(opts.get(split, default), resolution, num_classes=classes,
                           seed=opts.get("seed", 0), split=split)
        splits[split] = Split(size=len(arrays[1]), arrays=arrays)
    return splits, list(SHAPES[:classes]), []


def _is_image(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return any(head.startswith(magic) for magic in _MAGIC)


def _class_folders(root: str) -> list[str]:
    """The names of a folder's sub-folders (its classes), sorted."""
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))


def _no_classes(root: str) -> InvalidArgument:
    """The error for an image folder without class sub-folders, saying what it holds."""
    images = sum(name.lower().endswith(IMAGE_SUFFIXES) for name in os.listdir(root))
    holds = (f"its {images} image(s) lie directly in it" if images
             else "it holds no image and no folder" if not os.listdir(root)
             else "it holds no folder")
    return InvalidArgument(f"image folder {root!r} has no class sub-folders ({holds}); "
                           "expected one sub-folder per class: PATH/<class>/<image>.jpg|png")


def _split_folders(root: str) -> dict[str, str]:
    """{split: folder} of an image folder with train and validation sub-folders
    (validation also as val/ or valid/); fewer than two: the folder is not split."""
    split_dirs = {s: os.path.join(root, s) for s in ("train", "validation")
                  if os.path.isdir(os.path.join(root, s))}
    if "train" in split_dirs and "validation" not in split_dirs:
        for alt in ("val", "valid"):
            if os.path.isdir(os.path.join(root, alt)):
                split_dirs["validation"] = os.path.join(root, alt)
    return split_dirs


def _list_folder(root: str) -> tuple[list[str], list[str], list[int], list[str]]:
    classes = _class_folders(root)
    files, labels, skipped = [], [], []
    for index, name in enumerate(classes):
        for dirpath, _, names in sorted(os.walk(os.path.join(root, name))):
            for fname in sorted(names):
                path = os.path.join(dirpath, fname)
                if not fname.lower().endswith(IMAGE_SUFFIXES):
                    continue
                if _is_image(path):
                    files.append(path)
                    labels.append(index)
                else:
                    skipped.append(path)
    return classes, files, labels, skipped


def _folder_source(spec: DataSpec) -> tuple[dict[str, Split], list[str], list[str]]:
    root = spec.location
    check_spec(spec)  # the folder, its class sub-folders, its splits' classes
    split_dirs = _split_folders(root)
    if len(split_dirs) == 2:
        listed = {s: _list_folder(d) for s, d in split_dirs.items()}
        classes = listed["train"][0]
        splits = {s: Split(size=len(v[1]), files=v[1], labels=v[2]) for s, v in listed.items()}
        skipped = listed["train"][3] + listed["validation"][3]
    else:
        classes, files, labels, skipped = _list_folder(root)
        held = [i % HOLDOUT_EVERY == 0 for i in range(len(files))]
        splits = {name: Split(size=held.count(out), files=[f for f, h in zip(files, held)
                                                           if h == out],
                              labels=[y for y, h in zip(labels, held) if h == out])
                  for name, out in (("train", False), ("validation", True))}
    for name, split in splits.items():
        if split.size == 0:
            raise InvalidArgument(f"image folder {root!r}: no readable images for the {name} "
                                  f"split (suffixes {', '.join(IMAGE_SUFFIXES)}; {len(skipped)} "
                                  "skipped)")
    return splits, classes, skipped


def _tfrecord_source(spec: DataSpec) -> tuple[dict[str, Split], list[str], list[str]]:
    import tensorflow as tf

    pattern = spec.location
    train, val = _tfrecord_files(pattern)
    offset = int(spec.options.get("label_offset", 0))
    classes = spec.options.get("classes")
    if classes is None:  # count the labels once (small sets); pass ?classes=N to skip this
        labels = tf.data.TFRecordDataset(train + val).map(
            lambda r: _parse_record(r, offset)[1], num_parallel_calls=tf.data.AUTOTUNE)
        classes = int(labels.reduce(tf.constant(-1, tf.int64),
                                    lambda a, b: tf.maximum(a, tf.cast(b, tf.int64))).numpy()) + 1
        if classes < 1:
            raise InvalidArgument(f"TFRecords {pattern!r} hold no records")
        size = {"train": int(tf.data.TFRecordDataset(train).reduce(0, lambda a, _: a + 1)),
                "validation": int(tf.data.TFRecordDataset(val).reduce(0, lambda a, _: a + 1))
                if val else None}
    else:
        classes, size = int(classes), {"train": -1, "validation": -1 if val else None}
    if val:
        splits = {"train": Split(size=size["train"], records=train),
                  "validation": Split(size=size["validation"], records=val)}
    else:
        total = size["train"]
        held = -1 if total < 0 else math.ceil(total / HOLDOUT_EVERY)
        splits = {"train": Split(size=-1 if total < 0 else total - held, records=train,
                                 holdout="drop"),
                  "validation": Split(size=held, records=train, holdout="keep")}
    return splits, [str(i) for i in range(classes)], []


def _tfrecord_files(pattern: str) -> tuple[list[str], list[str]]:
    """(train, validation) TFRecord files of a glob (no validation files) or of a folder of
    train* and validation* shards; a MissingFile error naming the pattern when none match."""
    if os.path.isdir(pattern):
        train = sorted(glob.glob(os.path.join(pattern, "train*")))
        val = sorted(glob.glob(os.path.join(pattern, "validation*")))
        if not train:
            raise MissingFile(f"no train* TFRecord shards in folder {pattern!r}")
    else:
        train, val = sorted(glob.glob(pattern)), []
        if not train:
            raise MissingFile(f"no TFRecord files match {pattern!r}")
    return train, val


def _parse_record(record: Any, label_offset: int) -> tuple[Any, Any]:
    import tensorflow as tf

    parsed = tf.io.parse_single_example(record, {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64)})
    return parsed["image/encoded"], tf.cast(parsed["image/class/label"] - label_offset, tf.int32)


def open_source(spec: DataSpec, resolution: int) -> tuple[dict[str, Split], list[str], list]:
    """The spec's splits, class names and skipped files."""
    if spec.kind == "synthetic":
        return _synthetic_source(spec, resolution)
    if spec.kind == "folder":
        return _folder_source(spec)
    return _tfrecord_source(spec)


def class_names(spec: str | DataSpec) -> list[str]:
    """The class names of a data spec, in the order of its labels (a folder's sub-folders,
    the synthetic set's shapes, a TFRecord set's label names)."""
    return open_source(parse_spec(spec), 8)[1]
