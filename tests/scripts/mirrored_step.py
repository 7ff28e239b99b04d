"""One training step under MirroredStrategy on two logical CPUs vs the default strategy.

Run as a subprocess (logical devices must be configured before TensorFlow starts). Prints a
JSON line with the largest differences (trainable weights; BN moving statistics, relative) and
the outcome of an unsplittable batch.
"""

import dataclasses
import json

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_effnet  # noqa: E402
from keras_effnet.train import make_strategy, train  # noqa: E402

config = dataclasses.replace(keras_effnet.scale(phi=-4, base="lite"), drop_path_rate=0.0,
                             dropout_rate=0.0)  # a small SE-free model: the step is the point
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
y = keras.utils.to_categorical(rng.integers(0, 4, 8), 4)
initial_model = keras_effnet.build(config, num_classes=4, input_shape=(32, 32, 3))
initial = initial_model.get_weights()
initial_trainable = [v.numpy() for v in initial_model.trainable_variables]


def one_step(strategy, synchronized):
    """(trainable, non-trainable) weights after one step of batch 8."""
    with strategy.scope():
        model = keras_effnet.build(dataclasses.replace(config, bn_synchronized=synchronized),
                                   num_classes=4, input_shape=(32, 32, 3))
        model.set_weights(initial)
        model.compile(keras.optimizers.SGD(0.01), "categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return ([v.numpy() for v in model.trainable_variables],
            [v.numpy() for v in model.non_trainable_variables])


def largest(a_list, b_list, relative=False):
    """Largest |a - b| over all variables (relative to max |a| of each variable if asked)."""
    return max(float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-6 if relative else 1.0))
               for a, b in zip(a_list, b_list))


mirrored = make_strategy("mirrored")
single = one_step(tf.distribute.get_strategy(), False)
multi = one_step(mirrored, True)
moved = largest(single[0], initial_trainable)  # trainable weights: the gradient step
diff = largest(single[0], multi[0])
stats_diff = largest(single[1], multi[1], relative=True)  # BN moving statistics
try:
    train("lite0", data="synthetic?train=12&validation=4", epochs=1, batch_size=3,
          strategy="mirrored", resolution=32, out="/tmp/unused-effnet-run")
    unsplittable = "no error"
except ValueError as err:
    unsplittable = str(err)
print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "moved": moved, "diff": diff,
                  "stats_diff": stats_diff, "unsplittable": unsplittable}))
