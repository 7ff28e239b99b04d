"""Input pipelines on real files written by the tests: PNG, JPEG, a corrupt file, TFRecords."""

import numpy as np
import pytest
import tensorflow as tf

from keras_effnet import data as data_module
from keras_effnet.data import (SHAPES, Augment, eval_crop, load, parse_spec, synthetic,
                               train_crop, write_image_folder)


def test_synthetic_is_deterministic_balanced_and_split():
    a, ya = synthetic(40, 32, seed=3)
    b, yb = synthetic(40, 32, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    c, _ = synthetic(40, 32, seed=3, split="validation")
    assert not np.array_equal(a, c)
    assert np.bincount(ya, minlength=10).tolist() == [4] * 10
    assert a.dtype == np.uint8 and a.shape == (40, 32, 32, 3)
    big, _ = synthetic(2, 200, num_classes=4)
    assert big.shape == (2, 200, 200, 3) and big.std() > 20


def test_synthetic_classes_differ_in_shape_not_colour():
    images, labels = synthetic(400, 32, seed=0)
    means = np.array([images[labels == k].mean(axis=(0, 1, 2)) for k in range(10)])
    # colour carries no label: per-class mean colours are all close to the global mean
    assert np.abs(means - images.mean(axis=(0, 1, 2))).max() < 25


def _write_folder(root, fmt="png", per_class=6, classes=3, resolution=40):
    images, labels = synthetic(per_class * classes, resolution, num_classes=classes, seed=1)
    write_image_folder(str(root), images, labels, image_format=fmt)
    return images, labels


def test_a_relative_folder_spec_is_recorded_absolute(tmp_path, monkeypatch):
    """What a run records (`Data.describe`, summary.json) finds the same images from another
    working directory; a URL stays as it is."""
    _write_folder(tmp_path / "photos", "png")
    monkeypatch.chdir(tmp_path)
    recorded = load("folder:photos", resolution=32, batch_size=4).describe()["spec"]
    assert recorded == f"folder:{tmp_path / 'photos'}"
    monkeypatch.chdir(tmp_path / "photos")
    assert load(recorded, resolution=32, batch_size=4).train_size > 0
    assert str(parse_spec("tfrecord:gs://bucket/train-*?label_offset=1").absolute()) == (
        "tfrecord:gs://bucket/train-*?label_offset=1")


def test_folder_with_png_jpeg_and_a_corrupt_file(tmp_path):
    _write_folder(tmp_path, "png")
    images, labels = synthetic(6, 40, num_classes=3, seed=2)
    write_image_folder(str(tmp_path), images, labels, image_format="jpg")
    (tmp_path / "disk" / "broken.jpg").write_bytes(b"this is not an image")
    (tmp_path / "disk" / "notes.txt").write_text("ignored: not an image suffix")
    data = load(f"folder:{tmp_path}", resolution=32, batch_size=4)
    assert data.class_names == ["disk", "ring", "square"] and data.num_classes == 3
    assert data.skipped == [str(tmp_path / "disk" / "broken.jpg")]
    assert data.train_size + data.validation_size == 24
    x, y = next(iter(data.train))
    assert x.shape == (4, 32, 32, 3) and x.dtype == tf.float32 and y.shape == (4, 3)
    assert 0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 255
    seen = sum(int(b[0].shape[0]) for b in data.validation)
    assert seen == data.validation_size


def test_truncated_image_is_dropped_and_the_rest_kept(tmp_path):
    _write_folder(tmp_path, "jpg", per_class=5)  # 15 images; 12 train / 3 held out
    victim = sorted((tmp_path / "ring").iterdir())[1]  # a training image
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])  # header intact
    data = load(f"folder:{tmp_path}", resolution=32, batch_size=1)
    assert data.skipped == [] and data.train_size == 12
    assert sum(1 for _ in data.train) == 11  # dropped when decoded; the run goes on
    assert sum(1 for _ in data.validation) == 3


def _validation_images(data):
    return {x.tobytes() for batch, _ in data.validation.as_numpy_iterator() for x in batch}


def test_workers_read_disjoint_shares_of_the_files(tmp_path):
    _write_folder(tmp_path, per_class=10)
    whole = _validation_images(load(f"folder:{tmp_path}", resolution=32, batch_size=2))
    shares = [load(f"folder:{tmp_path}", resolution=32, batch_size=2, shard=(2, i))
              for i in range(2)]
    parts = [_validation_images(d) for d in shares]
    assert len(whole) == 6 and parts[0] | parts[1] == whole and not parts[0] & parts[1]
    assert shares[1].describe()["shard"] == (2, 1)
    images, labels = synthetic(20, 40, num_classes=4, seed=5)
    _write_tfrecords(tmp_path, images, labels, offset=0, shards=2)  # one file per worker
    spec = f"tfrecord:{tmp_path}/train-*"
    whole = _validation_images(load(spec, resolution=32, batch_size=2))
    parts = [_validation_images(load(spec, resolution=32, batch_size=2, shard=(2, i)))
             for i in range(2)]
    assert parts[0] and parts[1] and not parts[0] & parts[1]
    with pytest.raises(ValueError, match=r"shard=\(2, 2\); accepted: \(count, index\)"):
        load(f"folder:{tmp_path}", resolution=32, batch_size=2, shard=(2, 2))


def test_sources_too_large_to_cache_stream_shuffled(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "CACHE_BYTES", 0)
    _write_folder(tmp_path / "folder", per_class=10)  # 30 images, class after class; 24 train
    data = load(f"folder:{tmp_path / 'folder'}", resolution=32, batch_size=1)
    epochs = [[int(y.argmax()) for _, y in data.train.as_numpy_iterator()] for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == [0] * 8 + [1] * 8 + [2] * 8
    assert epochs[0] != sorted(epochs[0]) and epochs[0] != epochs[1]  # shuffled, each epoch
    images, labels = synthetic(20, 40, num_classes=4, seed=5)
    _write_tfrecords(tmp_path, images, labels, offset=0)
    data = load(f"tfrecord:{tmp_path}/train-*", resolution=32, batch_size=1)
    assert sum(1 for _ in data.train) == 16 and sum(1 for _ in data.validation) == 4


def test_folder_with_train_and_validation_subfolders(tmp_path):
    _write_folder(tmp_path / "train")
    _write_folder(tmp_path / "validation", per_class=2)
    data = load(f"folder:{tmp_path}", resolution=32, batch_size=2)
    assert (data.train_size, data.validation_size) == (18, 6)


def _write_tfrecords(path, images, labels, offset, shards=2):
    files = []
    for shard in range(shards):
        name = str(path / f"train-{shard:05d}-of-{shards:05d}")
        with tf.io.TFRecordWriter(name) as writer:
            for image, label in list(zip(images, labels))[shard::shards]:
                feature = {
                    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
                        value=[tf.io.encode_jpeg(image).numpy()])),
                    "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(
                        value=[int(label) + offset]))}
                writer.write(tf.train.Example(features=tf.train.Features(
                    feature=feature)).SerializeToString())
        files.append(name)
    return files


def test_tfrecords_in_imagenet_format(tmp_path):
    images, labels = synthetic(20, 40, num_classes=4, seed=5)
    _write_tfrecords(tmp_path, images, labels, offset=1)
    data = load(f"tfrecord:{tmp_path}/train-*?label_offset=1", resolution=32, batch_size=4)
    assert data.num_classes == 4 and (data.train_size, data.validation_size) == (16, 4)
    got = np.concatenate([np.argmax(y, axis=1) for _, y in data.validation.as_numpy_iterator()])
    # every 5th record in read order: shards are read round-robin, which is the order written
    assert sorted(got.tolist()) == sorted(int(lab) for lab in labels[0::5])


def test_tfrecord_folder_with_validation_shards(tmp_path):
    images, labels = synthetic(12, 40, num_classes=3, seed=6)
    _write_tfrecords(tmp_path, images, labels, offset=0, shards=1)
    (tmp_path / "train-00000-of-00001").rename(tmp_path / "validation-00000-of-00001")
    _write_tfrecords(tmp_path, images, labels, offset=0, shards=1)
    data = load(f"tfrecord:{tmp_path}", resolution=32, batch_size=4)
    assert (data.train_size, data.validation_size) == (12, 12)


def test_crops_keep_pixel_range_and_size():
    pixels = np.random.default_rng(0).integers(0, 256, (50, 70, 3)).astype("uint8")
    image = tf.constant(pixels)
    assert train_crop(image, 32, (0.25, 1.0)).shape == (32, 32, 3)
    out = eval_crop(image, 48)
    assert out.shape == (48, 48, 3) and 0 <= float(tf.reduce_min(out)) and float(
        tf.reduce_max(out)) <= 255
    # the centre 0.875 of the shorter side: int(50 · 0.875) = 43 rows and columns from (3, 13)
    np.testing.assert_allclose(eval_crop(image, 43).numpy(), pixels[3:46, 13:56], atol=1e-3)


def test_randaugment_pipeline():
    data = load("synthetic?train=16&validation=8", resolution=32, batch_size=8,
                augment=Augment(randaugment=(2, 10)))
    x, _ = next(iter(data.train))
    assert x.shape == (8, 32, 32, 3)


@pytest.mark.parametrize("spec,error,match", [
    ("imagenet", ValueError, r"unknown data spec 'imagenet'"),
    ("folder:", ValueError, r"names no path"),
    ("synthetic?size=3", ValueError, r"unknown option\(s\) \['size'\]"),
    ("synthetic?train=x", ValueError, r"train='x' is not an integer"),
    ("folder:/nonexistent/images", FileNotFoundError, r"image folder not found"),
    ("tfrecord:/nonexistent/*.tfrecord", FileNotFoundError, r"no TFRecord files match"),
])
def test_bad_specs(spec, error, match):
    with pytest.raises(error, match=match):
        load(spec, resolution=32, batch_size=4)


def test_empty_folder(tmp_path):
    with pytest.raises(ValueError, match=r"has no class sub-folders"):
        load(f"folder:{tmp_path}", resolution=32, batch_size=4)
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "bad.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"no readable images for the train split .*1 skipped"):
        load(f"folder:{tmp_path}", resolution=32, batch_size=4)


def test_check_spec_finds_what_load_would_refuse_without_reading_a_file(tmp_path):
    """A flat folder (its images directly in it), a split whose own folder is flat, splits
    with other classes, no TFRecords: each named with what is wrong."""
    from keras_effnet.data import check_spec

    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(ValueError, match=r"^image folder '.*/flat' has no class sub-folders "
                       r"\(its 1 image\(s\) lie directly in it\); expected one sub-folder per "
                       r"class: PATH/<class>/<image>\.jpg\|png$"):
        check_spec(f"folder:{tmp_path / 'flat'}")
    for split, classes in (("train", ["cats", "dogs"]), ("val", [])):
        for name in classes or [""]:
            (tmp_path / "split" / split / name).mkdir(parents=True, exist_ok=True)
    with pytest.raises(ValueError, match=r"'.*/split/val' has no class sub-folders \(it holds "
                       r"no image and no folder\)"):
        check_spec(f"folder:{tmp_path / 'split'}")
    (tmp_path / "split" / "val" / "cats").mkdir()
    with pytest.raises(ValueError, match=r"train and validation have different class folders "
                       r"\(\['cats', 'dogs'\] vs \['cats'\]\)"):
        check_spec(f"folder:{tmp_path / 'split'}")
    (tmp_path / "split" / "val" / "dogs").mkdir()
    assert check_spec(f"folder:{tmp_path / 'split'}") == parse_spec(
        f"folder:{tmp_path / 'split'}")  # no image yet: `load` says so, reading them
    with pytest.raises(FileNotFoundError, match=r"image folder not found: .* \(a file, not a "
                       r"folder\)"):
        check_spec(f"folder:{tmp_path / 'flat' / 'a.jpg'}")
    with pytest.raises(FileNotFoundError, match=r"no TFRecord files match"):
        check_spec(f"tfrecord:{tmp_path}/*.tfrecord")
    assert check_spec("synthetic?train=8").options == {"train": "8"}


def test_class_count_must_match(tmp_path):
    _write_folder(tmp_path)
    with pytest.raises(ValueError, match=r"has 3 classes but num_classes=10"):
        load(f"folder:{tmp_path}", resolution=32, batch_size=4, num_classes=10)


def test_batch_larger_than_data():
    with pytest.raises(ValueError, match=r"fewer than one batch of 64"):
        load("synthetic?train=10&validation=4", resolution=32, batch_size=64)


def test_spec_round_trip():
    spec = parse_spec("synthetic?train=100&seed=2")
    assert parse_spec(str(spec)) == spec and len(SHAPES) == 10
