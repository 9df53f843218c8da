"""Trains image-to-image models with one wall-clock budget each and prints one table.

    python bench/translation.py --dataset=edges2fashion --seconds=480 \\
        --models=pix2pix+width=32,pix2pix+width=32+gan_weight=0
    python bench/translation.py --dataset=thin2bold_mnist --seconds=600 --models=cyclegan+width=32
    python bench/translation.py --dataset=fashion_mnist --seconds=480 \
        --models=srgan+width=32+adversarial_weight=0,srgan+width=32

Each model trains through `gan_tf.training.train` (as `train.py` does; epochs of
`--steps_per_epoch` steps) until the first step past `--seconds` (and past each of the earlier
budgets `--report_seconds`, with the clock paused while it is judged), then translates up to
`--num_samples` held-out inputs of the data (seed 1) along each of its directions, and is judged
against the direction's target domain with the data's own classifier (`gan_tf.metrics.evaluation.
evaluate_translation`). Every direction also gets the do-nothing baseline (its inputs, resized
bicubically when the sizes differ) and the real floor. Columns: FID, KID, precision, recall,
sharpness, label preservation (the classifier's label of the output equals the input's, where
the data have labels), L1 / PSNR / SSIM to the targets (paired data), generator updates, wall
time, milliseconds per translated image (batches of 64) and parameters. A benchmark, not a test:
run nothing else meanwhile.
"""

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import app, flags

from bench.common import parse_entry, report_at  # noqa: E402

flags.DEFINE_list("models", ["pix2pix+width=32", "pix2pix+width=32+gan_weight=0"],
                  "Models, each `name[+option...]` as bench/quality.py's (model arguments or TrainConfig fields).")
flags.DEFINE_string("dataset", "edges2fashion", "Image-to-image data (edges2fashion, thin2bold_mnist, pairs:PATH, ...).")
flags.DEFINE_integer("seconds", 480, "Wall-clock training budget per model.")
flags.DEFINE_list("report_seconds", [], "Earlier training budgets (seconds) at which each model is also judged.")
flags.DEFINE_integer("steps_per_epoch", 500, "Train steps per epoch (the budget usually ends one mid-way).")
flags.DEFINE_integer("num_samples", 1000, "Held-out inputs translated and judged per direction.")
flags.DEFINE_string("output", None, "Optional JSON output.")
flags.DEFINE_string("grids_dir", None, "Optional folder for each model's preview grid (PNG) after its budget.")
FLAGS = flags.FLAGS

_COLUMNS = [("fid", "FID", ".1f"), ("kid", "KID", ".2f"), ("precision", "precision", ".3f"), ("recall", "recall", ".3f"),
            ("sharpness", "sharpness", ".2f"), ("label_accuracy", "label preserved", ".3f"), ("l1", "L1", ".3f"),
            ("psnr", "PSNR dB", ".2f"), ("ssim", "SSIM", ".3f")]


def main(argv):
    from gan_tf.metrics.evaluation import baseline_images, evaluate_translation, features_for
    from gan_tf.serving.sampling import _to_uint8
    from gan_tf.data import open_source
    from gan_tf.training import TrainConfig, train
    from gan_tf.data.pairs import reversed_source

    source = open_source(FLAGS.dataset)
    if source.info.examples is None:
        raise app.UsageError(f"{FLAGS.dataset} is not image-to-image data")
    classifiers = {}
    rows, baselines = [], {}

    def judge(model, entry, seconds):
        """Appends `model`'s rows (one per direction) after `seconds` of training."""
        updates = int(max(int(o.iterations) for o in model.optimizer_roles().values()))
        for name, direction in model.directions().items():
            judged = reversed_source(source) if direction.reverse else source
            if name not in classifiers:
                classifiers[name] = features_for(judged)
            examples = model.examples  # the data's held-out examples, as the model sees them
            count = min(FLAGS.num_samples, len(examples.targets if direction.reverse or examples.inputs is None else examples.inputs))
            model.sample(4, seed=0, direction=name)  # trace before timing
            began = time.time()
            samples = model.sample(count, seed=1, direction=name)
            ms = 1000 * (time.time() - began) / count
            inputs = samples.conditions["inputs"]
            report = evaluate_translation(_to_uint8(samples.images, model.value_range), judged,
                                          labels=samples.conditions.get("labels"), targets=samples.conditions.get("targets"),
                                          baseline=baseline_images(inputs, direction.target_shape),
                                          classifier=classifiers[name], seed=0)
            baselines.setdefault(name, report["baseline"])
            baselines[f"{name} floor"] = report["floor"]
            rows.append({"model": entry, "direction": name, "updates": updates, "seconds": round(seconds),
                         "ms_per_image": ms, "parameters": int(model.count_params()), **report["generated"]})
            print(f"{entry} after {seconds:.0f} s ({updates} updates), {name}: label preserved "
                  f"{report['generated'].get('label_accuracy')}, FID {report['generated']['fid']:.1f}", flush=True)

    budgets = sorted({int(seconds) for seconds in FLAGS.report_seconds if int(seconds) < FLAGS.seconds} | {FLAGS.seconds})
    for entry in FLAGS.models:
        model_name, overrides = parse_entry(entry)
        with tempfile.TemporaryDirectory() as workdir:
            config = TrainConfig(model=model_name, dataset=FLAGS.dataset, epochs=10_000, steps_per_epoch=FLAGS.steps_per_epoch,
                                 workdir=os.path.join(workdir, "run"), export_dir=os.path.join(workdir, "export"),
                                 eval_every=0, verbose=0, **overrides)
            trained = []  # the training seconds at each budget

            def report(model, seconds):
                trained.append(seconds)
                if len(trained) < len(budgets):  # the last is judged after `train` has exported
                    judge(model, entry, seconds)

            result = train(config, callbacks=[report_at(budgets, report)])
        model = result.model
        if FLAGS.grids_dir:
            from gan_tf.training.callbacks import sample_grid
            from gan_tf.grids import save_image

            save_image(os.path.join(FLAGS.grids_dir, f"{entry.replace('+', '_').replace('=', '')}.png"),
                       sample_grid(model, 8, 8, seed=1234))
        judge(model, entry, trained[-1])
    for name, values in baselines.items():
        label = f"real {name.split()[0]} (floor)" if name.endswith("floor") else f"inputs as outputs ({name} baseline)"
        rows.append({"model": label, "direction": name.split()[0], **values})

    classifier = next(iter(classifiers.values()))
    print(f"\n{source.summary}\n{FLAGS.seconds} s of training per model, {FLAGS.num_samples} held-out inputs, classifier "
          f"held-out accuracy {classifier.test_accuracy or 0:.3f}, {os.cpu_count()} cores")
    print("| model | direction | G updates | wall s | " + " | ".join(title for _, title, _ in _COLUMNS) + " | ms/image | parameters |")
    print("| --- " * (len(_COLUMNS) + 6) + "|")

    def shown(value, form):
        return "-" if value is None else format(value, form)

    for row in rows:
        cells = [shown(row.get(key), form) for key, _, form in _COLUMNS]
        print(f"| {row['model']} | {row['direction']} | {row.get('updates', '-')} | {row.get('seconds', '-')} | "
              + " | ".join(cells) + f" | {shown(row.get('ms_per_image'), '.2f')} | {shown(row.get('parameters'), ',')} |")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(rows, f, indent=2, default=float)


if __name__ == "__main__":
    app.run(main)
