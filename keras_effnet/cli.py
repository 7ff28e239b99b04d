"""The `effnet` command line: `effnet build`, `effnet profile`.

    effnet profile --variants=b0,b1,b2,b3,b4,b5,b6,b7
    effnet profile --phi=0,1,2,3,4 --base=lite
    effnet build --variant=lite0 --num_classes=10 --out=lite0.keras
"""

from __future__ import annotations

import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("variant", None, "released variant: b0..b7, lite0..lite4 (build)")
flags.DEFINE_list("variants", None, "comma-separated released variants (profile)")
flags.DEFINE_list("phi", None, "compound coefficient(s) φ, comma-separated for profile")
flags.DEFINE_string("base", "efficientnet", "base network for φ: efficientnet or lite")
flags.DEFINE_integer("base_resolution", None, "resolution at φ = 0 (default: the base's 224)")
flags.DEFINE_integer("resolution", None, "input size of the built model (default: the config's)")
flags.DEFINE_integer("num_classes", 1000, "classifier outputs")
flags.DEFINE_string("weights", None, "keras.applications-format weights file to load")
flags.DEFINE_bool("skip_head", False, "with --weights: leave the classifier freshly initialised")
flags.DEFINE_string("out", None, "where to write the model (.keras) for build")
flags.DEFINE_bool("per_layer", False, "profile: print the per-layer table too")
flags.DEFINE_bool("summary", False, "build: print the Keras layer summary")
flags.DEFINE_string("data", "synthetic", "data spec: synthetic | folder:PATH | tfrecord:GLOB")
flags.DEFINE_integer("epochs", 20, "training epochs")
flags.DEFINE_integer("batch_size", 64, "global batch size (split across replicas)")
flags.DEFINE_enum("recipe", "short", ["short", "paper"], "training recipe (see README)")
flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy")
flags.DEFINE_enum("mixed_precision", "none", ["none", "auto", "float16", "bfloat16"],
                  "mixed-precision policy")
flags.DEFINE_float("learning_rate", None, "override the recipe's learning rate (per 256 images)")
flags.DEFINE_integer("seed", 0, "random seed")
flags.DEFINE_string("model", None, "a saved .keras model (eval, export)")


def _configs():
    """Yield the ModelConfigs the flags ask for (profile: many; build: the first)."""
    import keras_effnet

    kwargs = {"base_resolution": FLAGS.base_resolution}
    if bool(FLAGS.variants or FLAGS.variant) == bool(FLAGS.phi):
        raise app.UsageError("give exactly one of --variant/--variants and --phi")
    if FLAGS.phi:
        for text in FLAGS.phi:
            try:
                phi = float(text)
            except ValueError:
                raise app.UsageError(f"--phi: {text!r} is not a number") from None
            yield keras_effnet.scale(phi=phi, base=FLAGS.base, **kwargs)
    else:
        for name in FLAGS.variants or [FLAGS.variant]:
            yield keras_effnet.scale(name, **kwargs)


def profile_table(configs) -> str:
    """Width, depth, resolution, params and MACs, with the published figures beside them."""
    from keras_effnet import VARIANTS, profile

    head = (f"{'model':<26} {'width':>6} {'depth':>6} {'res':>5} {'params':>12} "
            f"{'published':>12} {'MACs (B)':>9} {'published':>9} {'ratio':>6}")
    rows = [head, "-" * len(head)]
    for config in configs:
        p = profile(config)
        ref = VARIANTS.get(config.name.removeprefix("efficientnet-")) if config.phi is None else None
        rows.append(
            f"{config.name:<26} {config.width:>6.3f} {config.depth:>6.3f} {config.resolution:>5} "
            f"{p.trainable_params:>12,} {f'{ref.params:,}' if ref else '—':>12} "
            f"{p.macs / 1e9:>9.3f} {f'{ref.macs / 1e9:.3f}' if ref else '—':>9} "
            f"{f'{p.macs / ref.macs:.3f}' if ref else '—':>6}")
    rows.append("params: trainable, 1000 classes. MACs: conv/depthwise/dense multiply-adds "
                "(the paper's FLOPs); published: paper Table 2 / Lite reference README.")
    return "\n".join(rows)


def cmd_profile() -> None:
    from keras_effnet import profile

    configs = list(_configs())
    if FLAGS.per_layer:
        for config in configs:
            print(profile(config).table(), end="\n\n")
    print(profile_table(configs))


def cmd_build() -> None:
    import keras_effnet
    from keras_effnet.artifacts import check_writable_dir, save_model

    if FLAGS.out:
        check_writable_dir(FLAGS.out)  # fail before spending time on the build
    config = next(_configs())
    shape = None if FLAGS.resolution is None else (FLAGS.resolution, FLAGS.resolution, 3)
    model = keras_effnet.build(config, num_classes=FLAGS.num_classes, input_shape=shape,
                               weights=FLAGS.weights, skip_head=FLAGS.skip_head)
    print(config.summary())
    if FLAGS.summary:
        model.summary()
    p = keras_effnet.profile(model)
    print(f"{model.name}: {p.trainable_params:,} trainable / {p.params:,} total parameters, "
          f"{p.macs / 1e9:.3f} B MACs at {p.resolution[0]}x{p.resolution[1]}")
    if FLAGS.out:
        save_model(model, FLAGS.out)
        print(f"saved {FLAGS.out}")


def cmd_quickstart() -> None:
    """The main job (README's first command): reproduce Table 2's sizes, build, save."""
    import os

    import keras_effnet
    from keras_effnet.artifacts import save_model

    out = FLAGS.out or os.path.join("runs", "quickstart")
    os.makedirs(out, exist_ok=True)
    print(profile_table(keras_effnet.scale(v) for v in keras_effnet.VARIANTS))
    model = keras_effnet.build("lite0", num_classes=FLAGS.num_classes, base_resolution=64)
    path = os.path.join(out, "model.keras")
    save_model(model, path)
    p = keras_effnet.profile(model)
    print(f"built {model.name} at {p.resolution[0]} px: {p.trainable_params:,} parameters, "
          f"{p.macs / 1e6:.1f} M MACs -> {path}")


def cmd_train() -> None:
    from keras_effnet.train import Recipe, train

    overrides = {} if FLAGS.learning_rate is None else {"learning_rate": FLAGS.learning_rate}
    summary = train(next(_configs()), data=FLAGS.data, epochs=FLAGS.epochs,
                    batch_size=FLAGS.batch_size, recipe=Recipe.named(FLAGS.recipe, **overrides),
                    strategy=FLAGS.strategy, mixed_precision=FLAGS.mixed_precision,
                    resolution=FLAGS.resolution, out=FLAGS.out or "runs/train", seed=FLAGS.seed)
    scores = summary["validation"]
    print(f"validation: top-1 {scores['accuracy']:.4f}"
          + (f", top-5 {scores['top5']:.4f}" if "top5" in scores else "")
          + f" -> {FLAGS.out or 'runs/train'}/model.keras")


def cmd_eval() -> None:
    from keras_effnet.train import evaluate

    if not FLAGS.model:
        raise app.UsageError("effnet eval needs --model=PATH.keras")
    scores = evaluate(FLAGS.model, FLAGS.data, FLAGS.batch_size)
    print("  ".join(f"{name}: {value:.4f}" for name, value in scores.items()))


COMMANDS = {"build": cmd_build, "profile": cmd_profile, "quickstart": cmd_quickstart,
            "train": cmd_train, "eval": cmd_eval}


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"usage: effnet {{{'|'.join(COMMANDS)}}} [--flags]; "
                             f"got {' '.join(argv[1:]) or 'no command'}")
    try:
        COMMANDS[argv[1]]()
    except (ValueError, TypeError, FileNotFoundError, PermissionError) as err:
        print(f"effnet {argv[1]}: error: {err}", file=sys.stderr)
        sys.exit(2)


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
