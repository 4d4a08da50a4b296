"""TF Hub's make_image_classifier, rebuilt from its recipe (tensorflow/hub,
tensorflow_hub/tools/make_image_classifier/make_image_classifier_lib.py, the last version before it left the
package) for a whole-process comparison (benchmarks/whole_process.py): a frozen hub.KerasLayer, dropout 0.2,
a softmax Dense layer with L2 1e-4, SGD at 0.005 with momentum 0.9, categorical cross-entropy with label
smoothing 0.1, Keras' ImageDataGenerator over the folder (pixels / 255, 20% held out for validation, bilinear
resize), steps of 32 images.

    python -m benchmarks.mic_baseline FOLDER HUB_MODULE --epochs 20
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # hub.KerasLayer needs Keras 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("module")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    import tensorflow as tf
    import tensorflow_hub as hub

    layer = hub.KerasLayer(args.module, trainable=False)
    size = (224, 224)
    data = tf.keras.preprocessing.image.ImageDataGenerator(rescale=1.0 / 255, validation_split=0.2)
    flow = dict(target_size=size, batch_size=32, interpolation="bilinear")
    valid = data.flow_from_directory(args.folder, subset="validation", shuffle=False, **flow)
    train = data.flow_from_directory(args.folder, subset="training", shuffle=True, **flow)
    model = tf.keras.Sequential([tf.keras.Input(shape=(*size, 3)), layer, tf.keras.layers.Dropout(0.2),
                                 tf.keras.layers.Dense(train.num_classes, activation="softmax",
                                                       kernel_regularizer=tf.keras.regularizers.l2(1e-4))])
    model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=0.005, momentum=0.9),
                  loss=tf.keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(train, epochs=args.epochs, steps_per_epoch=train.samples // 32, validation_data=valid,
                        validation_steps=valid.samples // 32, verbose=0)
    print(json.dumps({"val_accuracy": history.history["val_accuracy"][-1], "fit_seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
