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

Corrupt files: a folder's files are checked by their first bytes when listed
(`keras_effnet.data_sources`, which opens every source); files that are not JPEG/PNG/GIF/BMP
are skipped, named and counted (`Data.skipped`). An image whose header is
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

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_effnet.data_sources import (HOLDOUT_EVERY, IMAGE_SUFFIXES, SHAPES, DataSpec, Split,
                                       _parse_record, check_spec, class_names, open_source,
                                       parse_spec, synthetic, write_image_folder)
from keras_effnet.errors import InvalidArgument

EVAL_CROP = 0.875
CACHE_BYTES = 2 << 30  # sources whose files total at most this are read once, kept encoded
SHUFFLE_BUFFER = 10_000  # encoded examples, for sources too large to cache


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
            raise InvalidArgument(f"crop_area_min={self.crop_area_min!r}; accepted: (0, 1]")
        if self.randaugment is not None:
            n, m = self.randaugment
            if n < 1 or not 0 <= m <= 30:
                raise InvalidArgument(f"randaugment={self.randaugment!r}; accepted: (ops >= 1, "
                                      "magnitude 0..30)")
        if not 0 <= self.mixup <= 1:
            raise InvalidArgument(f"mixup={self.mixup!r}; accepted: an alpha in [0, 1] (0: off)")


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


def load(spec: str | DataSpec, *, resolution: int, batch_size: int,
         augment: Augment | None = None, num_classes: int | None = None,
         seed: int = 0, shard: tuple[int, int] | None = None) -> Data:
    """Open a data spec as training and validation pipelines at `resolution`.

    `num_classes`, when given, must equal the source's class count (a clear error otherwise).
    `shard=(count, index)`: this input pipeline's share of the files of a multi-worker run
    (`train` passes it), taken before anything is read or decoded.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size={batch_size!r}; accepted: an integer >= 1")
    spec, splits, class_names, skipped = _open(spec, resolution)
    if num_classes is not None and num_classes != len(class_names):
        raise InvalidArgument(f"data {str(spec)!r} has {len(class_names)} classes but "
                              f"num_classes={num_classes}; they must agree")
    if 0 <= splits["train"].size < batch_size:
        raise InvalidArgument(f"data {str(spec)!r}: {splits['train'].size} training examples, "
                              f"fewer than one batch of {batch_size}; lower batch_size")
    if shard is not None and not (len(shard) == 2 and 0 <= shard[1] < shard[0]):
        raise InvalidArgument(f"shard={shard!r}; accepted: (count, index) with 0 <= index < count")
    shard = tuple(shard) if shard and shard[0] > 1 else None
    kwargs = dict(resolution=resolution, batch_size=batch_size, num_classes=len(class_names),
                  augment=augment or Augment(), seed=seed, shard=shard)
    return Data(spec=spec, num_classes=len(class_names), class_names=class_names,
                train=_pipeline(splits["train"], spec, training=True, **kwargs),
                validation=_pipeline(splits["validation"], spec, training=False, **kwargs),
                train_size=splits["train"].size, validation_size=splits["validation"].size,
                resolution=resolution, skipped=skipped, shard=shard)


def _open(spec: str | DataSpec, resolution: int) -> tuple[DataSpec, dict[str, Split], list[str],
                                                          list[str]]:
    """The parsed spec, its splits, class names and skipped files (`open_source`), once the
    resolution is checked."""
    spec = parse_spec(spec)
    if not isinstance(resolution, int) or resolution < 8:
        raise InvalidArgument(f"resolution={resolution!r}; accepted: an integer >= 8")
    return (spec, *open_source(spec, resolution))


def examples(spec: str | DataSpec, resolution: int, count: int, split: str = "validation",
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to `count` evaluation-preprocessed images (float32, [0, 255]) and their labels from one
    split of a spec: "train" to calibrate quantization, "validation" to verify artifacts."""
    if split not in ("train", "validation"):
        raise InvalidArgument(f"split={split!r}; accepted: 'train' or 'validation'")
    spec, splits, class_names, _ = _open(spec, resolution)
    batch = max(1, min(count, 64))
    ds = _pipeline(splits[split], spec, training=False, resolution=resolution, batch_size=batch,
                   num_classes=len(class_names), augment=Augment(), seed=seed)
    pairs = list(ds.take(-(-count // batch)).as_numpy_iterator())
    if not pairs:
        raise InvalidArgument(f"data {str(spec)!r} yielded no {split} images")
    images = np.concatenate([x for x, _ in pairs])[:count].astype("float32")
    return images, np.concatenate([y.argmax(-1) for _, y in pairs])[:count]


__all__ = ["Augment", "CACHE_BYTES", "Data", "DataSpec", "EVAL_CROP", "HOLDOUT_EVERY",
           "IMAGE_SUFFIXES", "SHAPES", "check_spec", "class_names", "eval_crop", "examples",
           "load", "parse_spec", "synthetic", "train_crop", "write_image_folder"]
