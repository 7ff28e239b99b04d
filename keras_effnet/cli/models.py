"""`effnet profile` and `effnet build`: the sizes of models (beside the published figures), and
a model built as a .keras file."""

from __future__ import annotations

from absl.app import UsageError

from keras_effnet.cli.options import (BASE_RESOLUTION, MODEL, SKIP_HEAD, VARIANT, WEIGHTS, Flag,
                                      model_config, model_configs)
from keras_effnet.cli.reports import profile_table, table3_rows, table3_table


def _numbers(texts: list[str] | None) -> list[float] | None:
    """A comma-separated --phi as numbers."""
    for text in texts or ():
        try:
            float(text)
        except ValueError:
            raise UsageError(f"--phi: {text!r} is not a number") from None
    return [float(text) for text in texts] if texts else None


PROFILE_FLAGS = {
    "variant": VARIANT, "variants": "comma-separated released variants",
    "phi": Flag("compound coefficient(s) φ, comma-separated", convert=_numbers),
    "base": "base network for φ: efficientnet, lite, mobilenet_v1, mobilenet_v2, resnet50 (the "
            "last three also print the paper's Table 3)",
    "base_resolution": BASE_RESOLUTION, "per_layer": "print the per-layer table too"}


def profile(*, variant: str | None = None, variants: list[str] | None = None,
            phi: list[float] | None = None, base: str = "efficientnet",
            base_resolution: int | None = None, per_layer: bool = False) -> None:
    """Parameters and MACs of variants or φ values, beside the published figures."""
    from keras_effnet import profile as measure

    names, table3 = variants or (variant and [variant]), table3_rows(base)
    configs = ([] if table3 and not (names or phi)  # `effnet profile --base=resnet50`
               else model_configs(names, phi, base, base_resolution))
    for config in configs if per_layer else ():
        print(measure(config).table(), end="\n\n")
    if configs:
        print(profile_table(configs))
    if table3:
        print(("\n" if configs else "") + table3_table(table3))


BUILD_FLAGS = {**MODEL, "num_classes": "classifier outputs", "weights": WEIGHTS,
               "skip_head": SKIP_HEAD, "summary": "print the Keras layer summary",
               "out": "the .keras file to write (default: none, print only)"}


def build(*, variant: str | None = None, phi: float | None = None, base: str = "efficientnet",
          base_resolution: int | None = None, resolution: int | None = None,
          num_classes: int = 1000, weights: str | None = None, skip_head: bool = False,
          summary: bool = False, out: str | None = None):
    """Build a model (optionally with --weights) and save it as .keras."""
    import keras_effnet
    from keras_effnet.files import check_writable_dir, save_model

    if out:
        check_writable_dir(out)  # fail before spending time on the build
    config = model_config(variant, phi, base, base_resolution)
    shape = None if resolution is None else (resolution, resolution, 3)
    model = keras_effnet.build(config, num_classes=num_classes, input_shape=shape,
                               weights=weights, skip_head=skip_head)
    print(config.summary())
    if summary:
        model.summary()
    p = keras_effnet.profile(model)
    print(f"{model.name}: {p.trainable_params:,} trainable / {p.params:,} total parameters, "
          f"{p.macs / 1e9:.3f} B MACs at {p.resolution[0]}x{p.resolution[1]}")
    if out:
        save_model(model, out)
        print(f"saved {out}")
    return model
