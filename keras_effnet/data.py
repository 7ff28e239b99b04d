"""Input pipelines: the embedded synthetic set, image folders, ImageNet-format TFRecords.

A *data spec* names a source in one string (the CLI's `--data`):

    synthetic                      the embedded procedural set (no files, no download)
    synthetic?train=2000&validation=500&seed=0&classes=10
    folder:PATH                    PATH/<class>/*.jpg|png (PATH/train + PATH/validation if present)
    tfrecord:GLOB                  `image/encoded` + `image/class/label` records
    tfrecord:GLOB?label_offset=1   for shards whose labels start at 1 (the reference's ImageNet)

Pixels stay in [0, 255] (the models normalise themselves). Training crops are random resized
crops + horizontal flips (+ optional RandAugment); evaluation is a centre crop of 0.875 then a
bicubic resize, as in the reference.

Corrupt files: a folder's files are checked by their first bytes when listed; files that are
not JPEG/PNG/GIF/BMP are skipped, named and counted (`Data.skipped`). An image whose header is
valid but whose data fails to decode (a truncated JPEG, say), and a TFRecord that fails to
parse, is dropped when it is read, with TensorFlow's warning in the log; the run goes on.

Memory: files and records are cached *encoded* when they total at most CACHE_BYTES, and
shuffled encoded (whole split when cached, SHUFFLE_BUFFER examples otherwise), so a folder of
full-size photos costs its size on disk, not its decoded size. Multi-worker runs shard the
file list (or the records) per worker before decoding (`load(..., shard=...)`).

Example:
    >>> data = load("synthetic?train=200&validation=50", resolution=64, batch_size=32)
    >>> data.num_classes, data.train_size
    (10, 200)
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

SHAPES = ("disk", "ring", "square", "frame", "triangle", "plus", "star", "half_disk",
          "ellipse", "two_dots")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
EVAL_CROP = 0.875
HOLDOUT_EVERY = 5  # without a validation split, every 5th example (20 %) is held out
CACHE_BYTES = 2 << 30  # sources whose files total at most this are read once, kept encoded
SHUFFLE_BUFFER = 10_000  # encoded examples, for sources too large to cache


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
        raise ValueError(f"num_classes={num_classes!r}; the synthetic set has 2 to "
                         f"{len(SHAPES)} classes")
    if resolution < 8 or num_images < 1:
        raise ValueError(f"synthetic(num_images={num_images}, resolution={resolution}): "
                         "need at least 1 image of at least 8 px")
    split_id = {"train": 0, "validation": 1}.get(split)
    if split_id is None:
        raise ValueError(f"split={split!r}; accepted: 'train' or 'validation'")
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
        raise ValueError(f"image_format={image_format!r}; accepted: 'png' or 'jpg'")
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
        raise ValueError(f"data spec {text!r}; accepted: 'synthetic', 'folder:PATH' or "
                         "'tfrecord:GLOB'")
    body, _, query = text.partition("?")
    kind, _, location = body.partition(":")
    if kind not in _OPTIONS:
        raise ValueError(f"unknown data spec {text!r}; accepted: 'synthetic', 'folder:PATH' "
                         "or 'tfrecord:GLOB'")
    if kind != "synthetic" and not location:
        raise ValueError(f"data spec {text!r} names no path; write '{kind}:PATH'")
    options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - _OPTIONS[kind]
    if unknown:
        raise ValueError(f"data spec {text!r}: unknown option(s) {sorted(unknown)}; accepted "
                         f"for {kind}: {sorted(_OPTIONS[kind]) or 'none'}")
    for key, value in options.items():
        if not value.lstrip("-").isdigit():
            raise ValueError(f"data spec {text!r}: {key}={value!r} is not an integer")
    return DataSpec(kind, location, options)


def check_spec(spec: str | DataSpec) -> DataSpec:
    """Check a data spec before any model work, in milliseconds and without TensorFlow: it
    parses; a folder exists and has class sub-folders (the same ones in its train and
    validation splits); TFRecord files match. Only `load` reads the images and records.
    Returns the parsed spec; raises ValueError or FileNotFoundError naming the folder or
    pattern and what is wrong.

    Example:
        >>> check_spec("folder:photos")  # photos/*.jpg, no class folders
        Traceback (most recent call last):
        ValueError: image folder 'photos' has no class sub-folders (its 12 image(s) lie ...
    """
    spec = parse_spec(spec)
    if spec.kind == "folder":
        root = spec.location
        if not os.path.isdir(root):
            raise FileNotFoundError(f"image folder not found: {root!r}" + (
                " (a file, not a folder)" if os.path.exists(root) else ""))
        split_dirs = _split_folders(root)
        classes = {split: _class_folders(folder) for split, folder in (
            split_dirs.items() if len(split_dirs) == 2 else [("all", root)])}
        for split, names in classes.items():
            if not names:
                raise _no_classes(split_dirs.get(split, root))
        if len(classes) == 2 and classes["train"] != classes["validation"]:
            raise ValueError(f"{root!r}: train and validation have different class folders "
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


@dataclass
class Data:
    """Training and validation `tf.data` pipelines plus what describes them."""

    spec: DataSpec
    num_classes: int
    class_names: list[str]
    train: Any
    validation: Any
    train_size: int
    validation_size: int
    resolution: int
    skipped: list[str] = field(default_factory=list)
    shard: tuple[int, int] | None = None  # (count, index) of a multi-worker input pipeline

    def describe(self) -> dict[str, Any]:
        return {"spec": str(self.spec.absolute()), "num_classes": self.num_classes,
                "class_names": self.class_names, "train_size": self.train_size,
                "validation_size": self.validation_size, "resolution": self.resolution,
                "skipped_files": self.skipped, "shard": self.shard}


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


def _no_classes(root: str) -> ValueError:
    """The error for an image folder without class sub-folders, saying what it holds."""
    images = sum(name.lower().endswith(IMAGE_SUFFIXES) for name in os.listdir(root))
    holds = (f"its {images} image(s) lie directly in it" if images
             else "it holds no image and no folder" if not os.listdir(root)
             else "it holds no folder")
    return ValueError(f"image folder {root!r} has no class sub-folders ({holds}); expected one "
                      "sub-folder per class: PATH/<class>/<image>.jpg|png")


def _split_folders(root: str) -> dict[str, str]:
    """{split: folder} of an image folder with train and validation sub-folders
    (validation also as val/ or valid/); fewer than two: the folder is not split."""
    split_dirs = {s: os.path.join(root, d) for s, d in (("train", "train"), ("validation", "validation"))
                  if os.path.isdir(os.path.join(root, d))}
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
        keep = [i % HOLDOUT_EVERY != 0 for i in range(len(files))]
        splits = {
            "train": Split(size=sum(keep), files=[f for f, k in zip(files, keep) if k],
                           labels=[y for y, k in zip(labels, keep) if k]),
            "validation": Split(size=len(files) - sum(keep),
                                files=[f for f, k in zip(files, keep) if not k],
                                labels=[y for y, k in zip(labels, keep) if not k])}
    for name, split in splits.items():
        if split.size == 0:
            raise ValueError(f"image folder {root!r}: no readable images for the {name} split "
                             f"(suffixes {', '.join(IMAGE_SUFFIXES)}; {len(skipped)} skipped)")
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
            raise ValueError(f"TFRecords {pattern!r} hold no records")
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
    train* and validation* shards; a FileNotFoundError naming the pattern when none match."""
    if os.path.isdir(pattern):
        train = sorted(glob.glob(os.path.join(pattern, "train*")))
        val = sorted(glob.glob(os.path.join(pattern, "validation*")))
        if not train:
            raise FileNotFoundError(f"no train* TFRecord shards in folder {pattern!r}")
    else:
        train, val = sorted(glob.glob(pattern)), []
        if not train:
            raise FileNotFoundError(f"no TFRecord files match {pattern!r}")
    return train, val


def _parse_record(record: Any, label_offset: int) -> tuple[Any, Any]:
    import tensorflow as tf

    parsed = tf.io.parse_single_example(record, {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64)})
    return parsed["image/encoded"], tf.cast(parsed["image/class/label"] - label_offset, tf.int32)


# ----------------------------------------------------------------------------- transforms

def train_crop(image: Any, resolution: int, area_range: tuple[float, float] = (0.08, 1.0)) -> Any:
    """Random resized crop (aspect 3/4–4/3) + horizontal flip; float32 pixels in [0, 255]."""
    import tensorflow as tf

    begin, size, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image), tf.zeros([0, 0, 4], tf.float32), min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3), area_range=area_range, max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, size)
    image = tf.image.resize(crop, [resolution, resolution], method="bilinear")
    return tf.ensure_shape(tf.image.random_flip_left_right(image), [resolution, resolution, 3])


def eval_crop(image: Any, resolution: int) -> Any:
    """Centre crop of 0.875 of the shorter side, bicubic resize; float32 pixels in [0, 255]."""
    import tensorflow as tf

    shape = tf.shape(image)
    side = tf.cast(tf.cast(tf.minimum(shape[0], shape[1]), tf.float32) * EVAL_CROP, tf.int32)
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    crop = image[top:top + side, left:left + side]
    image = tf.image.resize(crop, [resolution, resolution], method="bicubic")
    return tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), [resolution, resolution, 3])


@dataclass(frozen=True)
class Augment:
    """Training augmentation: crop area range, flips, optional RandAugment (N ops, magnitude M
    in 0..30) and optional mixup (alpha > 0), both Keras' own layers on whole batches."""

    crop_area_min: float = 0.08
    randaugment: tuple[int, float] | None = None
    mixup: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.crop_area_min <= 1:
            raise ValueError(f"crop_area_min={self.crop_area_min!r}; accepted: (0, 1]")
        if self.randaugment is not None:
            n, m = self.randaugment
            if n < 1 or not 0 <= m <= 30:
                raise ValueError(f"randaugment={self.randaugment!r}; accepted: (ops >= 1, "
                                 "magnitude 0..30)")
        if not 0 <= self.mixup <= 1:
            raise ValueError(f"mixup={self.mixup!r}; accepted: an alpha in [0, 1] (0: off)")


def _source_bytes(split: Split) -> int:
    """Bytes on disk of a split's files or records (its encoded size)."""
    return sum(os.path.getsize(f) for f in split.files or split.records)


def _pipeline(split: Split, spec: DataSpec, *, training: bool, resolution: int,
              batch_size: int, num_classes: int, augment: Augment, seed: int,
              shard: tuple[int, int] | None = None) -> Any:
    """Source → (shard) → encoded bytes → (cache, shuffle) → decode → crop → batch.

    Files and records are cached and shuffled *encoded* (a phone photo is ~10× smaller as JPEG
    than decoded) while the source's files total at most CACHE_BYTES; larger sources stream.
    `shard=(count, index)` keeps this input pipeline's 1/count of the files (of the records
    when there are fewer record files than pipelines) before anything is read or decoded.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    offset = int(spec.options.get("label_offset", 0))
    cached = split.arrays is not None or _source_bytes(split) <= CACHE_BYTES
    # Too large to cache: shuffle the file names fully first (a folder lists one class after
    # another), the records through a buffer after reading.
    stream_shuffle = training and not cached
    if not split.records:  # in-memory images, or file names to read
        ds = tf.data.Dataset.from_tensor_slices(
            split.arrays if split.arrays is not None else (split.files, split.labels))
        ds = ds.shard(*shard) if shard else ds
        if split.files:
            if stream_shuffle:
                ds = ds.shuffle(len(split.files), seed=seed, reshuffle_each_iteration=True)
            ds = ds.map(lambda path, label: (tf.io.read_file(path), label),
                        num_parallel_calls=autotune)
    else:
        records = tf.data.Dataset.from_tensor_slices(split.records)
        by_file = shard and len(split.records) >= shard[0]
        records = records.shard(*shard) if by_file else records
        if stream_shuffle and not split.holdout:  # file order decides the held-out records
            records = records.shuffle(len(split.records), seed=seed,
                                      reshuffle_each_iteration=True)
        # a fixed cycle keeps the record order, hence the held-out 20 %, machine-independent
        ds = records.interleave(tf.data.TFRecordDataset, cycle_length=8, block_length=1,
                                num_parallel_calls=autotune, deterministic=True)
        if split.holdout:
            keep = split.holdout == "keep"
            ds = ds.enumerate().filter(
                lambda i, _: tf.equal(i % HOLDOUT_EVERY == 0, keep)).map(lambda _, r: r)
        ds = ds.shard(*shard) if shard and not by_file else ds
        ds = ds.map(lambda r: _parse_record(r, offset), num_parallel_calls=autotune)
        if stream_shuffle:
            ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    if split.arrays is None and cached:
        ds = ds.cache()
    if training and cached:  # the whole split, every epoch
        ds = ds.shuffle(max(split.size, 1) if split.size >= 0 else SHUFFLE_BUFFER, seed=seed,
                        reshuffle_each_iteration=True)
    if split.arrays is None:
        ds = ds.map(lambda data, label: (tf.io.decode_image(data, channels=3,
                                                            expand_animations=False), label),
                    num_parallel_calls=autotune).ignore_errors(log_warning=True)
    if training:
        area = (augment.crop_area_min, 1.0)
        ds = ds.map(lambda image, label: (train_crop(image, resolution, area), label),
                    num_parallel_calls=autotune)
    else:
        ds = ds.map(lambda image, label: (eval_crop(image, resolution), label),
                    num_parallel_calls=autotune)
    ds = ds.map(lambda image, label: (image, tf.one_hot(label, num_classes)),
                num_parallel_calls=autotune)
    ds = ds.batch(batch_size, drop_remainder=training)
    if training and augment.randaugment is not None:
        import keras

        rand = keras.layers.RandAugment(value_range=(0, 255), num_ops=augment.randaugment[0],
                                        factor=augment.randaugment[1] / 30, seed=seed)
        ds = ds.map(lambda image, label: (rand(image, training=True), label),
                    num_parallel_calls=autotune)
    if training and augment.mixup > 0:
        import keras

        mix = keras.layers.MixUp(alpha=augment.mixup, seed=seed)

        def mixed(image: Any, label: Any) -> tuple[Any, Any]:
            out = mix({"images": image, "labels": label}, training=True)
            return out["images"], out["labels"]

        ds = ds.map(mixed, num_parallel_calls=autotune)
    options = tf.data.Options()
    # Sharded here: tf.distribute must not shard again. Otherwise (model.fit under a
    # multi-worker strategy on a dataset from `load`) files when there are several.
    policy = tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = (
        policy.OFF if shard else
        policy.FILE if split.records and len(split.records) > 1 and not split.holdout
        else policy.DATA)
    return ds.with_options(options).prefetch(autotune)


def _open(spec: DataSpec, resolution: int) -> tuple[dict[str, Split], list[str], list]:
    """The spec's splits, class names and skipped files."""
    if spec.kind == "synthetic":
        return _synthetic_source(spec, resolution)
    if spec.kind == "folder":
        return _folder_source(spec)
    return _tfrecord_source(spec)


def load(spec: str | DataSpec, *, resolution: int, batch_size: int,
         augment: Augment | None = None, num_classes: int | None = None,
         seed: int = 0, shard: tuple[int, int] | None = None) -> Data:
    """Open a data spec as training and validation pipelines at `resolution`.

    `num_classes`, when given, must equal the source's class count (a clear error otherwise).
    `shard=(count, index)`: this input pipeline's share of the files of a multi-worker run
    (`train` passes it), taken before anything is read or decoded.
    """
    spec = parse_spec(spec)
    if not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution={resolution!r}; accepted: an integer >= 8")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; accepted: an integer >= 1")
    splits, class_names, skipped = _open(spec, resolution)
    if num_classes is not None and num_classes != len(class_names):
        raise ValueError(f"data {str(spec)!r} has {len(class_names)} classes but "
                         f"num_classes={num_classes}; they must agree")
    if 0 <= splits["train"].size < batch_size:
        raise ValueError(f"data {str(spec)!r}: {splits['train'].size} training examples, "
                         f"fewer than one batch of {batch_size}; lower batch_size")
    if shard is not None and not (len(shard) == 2 and 0 <= shard[1] < shard[0]):
        raise ValueError(f"shard={shard!r}; accepted: (count, index) with 0 <= index < count")
    shard = tuple(shard) if shard and shard[0] > 1 else None
    kwargs = dict(resolution=resolution, batch_size=batch_size, num_classes=len(class_names),
                  augment=augment or Augment(), seed=seed, shard=shard)
    return Data(spec=spec, num_classes=len(class_names), class_names=class_names,
                train=_pipeline(splits["train"], spec, training=True, **kwargs),
                validation=_pipeline(splits["validation"], spec, training=False, **kwargs),
                train_size=splits["train"].size, validation_size=splits["validation"].size,
                resolution=resolution, skipped=skipped, shard=shard)


def class_names(spec: str | DataSpec) -> list[str]:
    """The class names of a data spec, in the order of its labels (a folder's sub-folders,
    the synthetic set's shapes, a TFRecord set's label names)."""
    return _open(parse_spec(spec), 8)[1]


def examples(spec: str | DataSpec, resolution: int, count: int, split: str = "validation",
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to `count` evaluation-preprocessed images (float32, [0, 255]) and their labels from one
    split of a spec: "train" to calibrate quantization, "validation" to verify artifacts."""
    if split not in ("train", "validation"):
        raise ValueError(f"split={split!r}; accepted: 'train' or 'validation'")
    spec = parse_spec(spec)
    if not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution={resolution!r}; accepted: an integer >= 8")
    splits, class_names, _ = _open(spec, resolution)
    batch = max(1, min(count, 64))
    ds = _pipeline(splits[split], spec, training=False, resolution=resolution, batch_size=batch,
                   num_classes=len(class_names), augment=Augment(), seed=seed)
    pairs = list(ds.take(-(-count // batch)).as_numpy_iterator())
    if not pairs:
        raise ValueError(f"data {str(spec)!r} yielded no {split} images")
    images = np.concatenate([x for x, _ in pairs])[:count].astype("float32")
    return images, np.concatenate([y.argmax(-1) for _, y in pairs])[:count]
