"""Time ``hear-mlp``'s grid search against naive re-runs of the same grid.

A fixed synthetic scene task (Gaussian classes in embedding space, seeded) is scored three ways
with hear-eval-kit's default grid (8 points, early stopping on top-1 accuracy):

* ``batched``: atst-hear's ``hear-mlp`` (grid heads trained together, embeddings in memory,
  in-memory snapshots of the best check);
* ``naive-torch``: the same heads one at a time with ``torch.nn`` / ``torch.optim``, a
  ``DataLoader`` over the rows, embeddings re-read from disk for every grid point and a
  checkpoint file written every epoch (plus one per improvement, reloaded for testing);
* ``naive-lightning``: the same with Lightning's ``Trainer``, ``ModelCheckpoint`` and
  ``EarlyStopping`` and a CSV logger, the stack hear-eval-kit runs;
* ``heareval``: hear-eval-kit 2021.1.3 itself (``heareval.predictions.runner``), run with the
  python of a separate venv (``--heareval-python``, see hear-contract.md §5.3) on the same
  embeddings written in its on-disk layout.

The first three draw the same initial weights and dropout masks (per-head generators), so
their selected grid point and scores agree up to float rounding (see ``docs/benchmark.md`` for
why they are not bit-identical); hear-eval-kit draws its own, so its scores agree in
distribution. Figures are printed and written to ``--out`` as JSON.

    .venv/bin/python benchmarks/bench_protocols.py                 # 100 clips, 768-d (~2 min)
    .venv/bin/python benchmarks/bench_protocols.py --train 1000 --valid 250 --test 250 \
        --dim 512 --classes 20 --out results/bench_protocols/medium.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from atst_hear.bench import provenance
from atst_hear.bench.heads import HearMLPClassifier
from atst_hear.bench.heads.batched import HeadRun, best_run, head_losses, seeded_generator
from atst_hear.bench.heads.mlp import head_config
from atst_hear.bench.heads.reference_mlp import reference_head, train_reference
from atst_hear.bench.protocols.data import SceneData
from atst_hear.bench.protocols.hear_mlp import Evaluator, grid_points
from atst_hear.fileio import write_json_atomic
from atst_hear.tasks.clip_metrics import top1_accuracy


def synthetic_task(n_train, n_valid, n_test, dim, classes, seed=0):
    """Gaussian classes: centroids N(0, 1), clips = centroid + N(0, noise^2)."""
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((classes, dim)).astype(np.float32)

    def split(n):
        labels = rng.integers(0, classes, n)
        x = centroids[labels] + 2.2 * rng.standard_normal((n, dim)).astype(np.float32)
        return SceneData(
            [f"{i}.wav" for i in range(n)], x, np.eye(classes, dtype=np.float32)[labels]
        )

    return split(n_train), split(n_valid), split(n_test)


def evaluator(data):
    return Evaluator(["top1_acc"], [str(i) for i in range(data.y.shape[1])], False, data)


class Timer:
    """Wall-clock and CPU seconds (this process and finished child processes)."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), self._cpu()

    @staticmethod
    def _cpu():
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    def elapsed(self) -> dict[str, float]:
        return {
            "seconds": round(time.perf_counter() - self.wall, 2),
            "cpu_seconds": round(self._cpu() - self.cpu, 2),
        }


def run_batched(confs, train, valid, test):
    started = Timer()
    grid = HearMLPClassifier(confs, scoring="top1_acc", random_state=("bench",))
    grid.fit(train.x, train.y, valid.x, valid.y)
    return {
        **started.elapsed(),
        "selected_grid_point": grid.best_index_,
        "selected_validation_top1": grid.best_score_,
        "test_top1": top1_accuracy(grid.predict_proba(test.x), test.y),
        "validation_top1_by_grid_point": [r["validation_score"] for r in grid.grid_results_],
        "best_epoch_by_grid_point": [r["epoch"] for r in grid.grid_results_],
    }


def run_naive_torch(confs, files, workdir):
    started = Timer()
    runs = []
    for index, conf in enumerate(confs):
        train, valid = _load(files, "train"), _load(files, "valid")  # re-read per grid point
        run = HeadRun(index, dict(conf), True, int(conf["max_epochs"]), int(conf["patience"]))
        model = train_reference(
            run,
            head_config(conf, train.x.shape[1], train.y.shape[1]),
            seeded_generator("bench", index),
            train.x,
            train.y,
            valid.x,
            False,
            evaluator(valid).select,
            workdir,
            int(conf["batch_size"]),
            int(conf["check_val_every_n_epoch"]),
        )
        run.snapshot = model
        runs.append(run)
    best = best_run(runs)
    test = _load(files, "test")
    with torch.no_grad():
        probs = torch.softmax(best.snapshot(torch.from_numpy(test.x)), 1).numpy()
    return _summary(runs, best, top1_accuracy(probs, test.y), started)


def run_naive_lightning(confs, files, workdir):
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")

    class Predictor(pl.LightningModule):
        def __init__(self, conf, config, generator):
            super().__init__()
            self.conf, self.net = conf, reference_head(config, conf["initialization"], generator)
            self.outputs = []

        def training_step(self, batch, _):
            x, y = batch
            loss = head_losses(self.net(x)[None], y, False)[0]
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _):
            self.outputs.append((self.net(batch[0]), batch[1]))

        def on_validation_epoch_end(self):
            logits = torch.cat([o[0] for o in self.outputs])
            targets = torch.cat([o[1] for o in self.outputs])
            self.outputs.clear()
            self.log(
                "val_top1_acc", top1_accuracy(torch.softmax(logits, 1).numpy(), targets.numpy())
            )

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=self.conf["lr"])

    started = Timer()
    runs = []
    for index, conf in enumerate(confs):
        train, valid = _load(files, "train"), _load(files, "valid")
        predictor = Predictor(
            conf,
            head_config(conf, train.x.shape[1], train.y.shape[1]),
            seeded_generator("bench", index),
        )
        checkpoint = ModelCheckpoint(
            monitor="val_top1_acc", mode="max", dirpath=workdir / f"gp{index}"
        )
        trainer = pl.Trainer(
            max_epochs=int(conf["max_epochs"]),
            check_val_every_n_epoch=int(conf["check_val_every_n_epoch"]),
            callbacks=[
                checkpoint,
                EarlyStopping(
                    monitor="val_top1_acc",
                    mode="max",
                    patience=int(conf["patience"]),
                    check_on_train_epoch_end=False,
                ),
            ],
            logger=CSVLogger(workdir / "logs"),
            num_sanity_val_steps=0,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            devices=1,
            deterministic=True,
            profiler="simple",  # as hear-eval-kit configures its Trainer
        )

        batch = int(conf["batch_size"])
        trainer.fit(predictor, _loader(train, batch), _loader(valid, batch))
        state = torch.load(checkpoint.best_model_path, weights_only=False)
        predictor.load_state_dict(state["state_dict"])
        run = HeadRun(index, dict(conf), True, int(conf["max_epochs"]), int(conf["patience"]))
        run.best_value, run.best_epoch = float(checkpoint.best_model_score), int(state["epoch"])
        run.snapshot = predictor.net.eval()
        runs.append(run)
    best = best_run(runs)
    test = _load(files, "test")
    with torch.no_grad():
        probs = torch.softmax(best.snapshot(torch.from_numpy(test.x)), 1).numpy()
    return _summary(runs, best, top1_accuracy(probs, test.y), started)


def run_heareval(python, confs, train, valid, test, workdir, threads):
    """hear-eval-kit 2021.1.3's own predictions runner (in its own venv) on the same embeddings."""
    import pickle
    import subprocess

    task = workdir / "embeddings" / "synthetic"
    task.mkdir(parents=True)
    labels = [f"c{i:03d}" for i in range(train.y.shape[1])]
    (task / "task_metadata.json").write_text(
        json.dumps(
            {
                "task_name": "synthetic",
                "embedding_type": "scene",
                "prediction_type": "multiclass",
                "split_mode": "trainvaltest",
                "splits": ["train", "valid", "test"],
                "sample_duration": 1.0,
                "evaluation": ["top1_acc"],
            }
        )
    )
    (task / "labelvocabulary.csv").write_text(
        "idx,label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels))
    )
    for name, data in (("train", train), ("valid", valid), ("test", test)):
        rows = np.memmap(task / f"{name}.embeddings.npy", np.float32, "w+", shape=data.x.shape)
        rows[:] = data.x
        rows.flush()
        (task / f"{name}.embedding-dimensions.json").write_text(json.dumps(list(data.x.shape)))
        with open(task / f"{name}.target-labels.pkl", "wb") as handle:
            pickle.dump([[labels[i]] for i in data.y.argmax(1)], handle)
    env = {
        **os.environ,
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    started = Timer()
    done = subprocess.run(
        [
            python,
            "-m",
            "heareval.predictions.runner",
            str(task),
            "--grid",
            "default",
            "--grid-points",
            str(len(confs)),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = started.elapsed()
    if done.returncode:
        raise RuntimeError(f"heareval failed:\n{done.stderr[-3000:]}")
    scores = json.loads((task / "test.predicted-scores.json").read_text())
    hparams = scores["hparams"]
    selected = next(
        i
        for i, c in enumerate(confs)
        if c["lr"] == hparams["lr"]
        and c["hidden_layers"] == hparams["hidden_layers"]
        and c["initialization"].rstrip("_") in hparams["initialization"]
    )
    return {
        **elapsed,
        "selected_grid_point": selected,
        "selected_validation_top1": scores["test"]["validation_score"],
        "test_top1": scores["test"]["test_top1_acc"],
        "checkpoint_bytes": sum(p.stat().st_size for p in (workdir / "logs").rglob("*.ckpt")),
    }


def _loader(data, batch_size):
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(torch.from_numpy(data.x), torch.from_numpy(data.y))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False)


def _load(files, split):
    return SceneData([], np.load(files[split + "_x"]), np.load(files[split + "_y"]))


def _summary(runs, best, test_score, started):
    return {
        **started.elapsed(),
        "selected_grid_point": best.index,
        "selected_validation_top1": best.best_value,
        "test_top1": test_score,
        "validation_top1_by_grid_point": [r.best_value for r in runs],
        "best_epoch_by_grid_point": [r.best_epoch for r in runs],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--valid", type=int, default=40)
    parser.add_argument("--test", type=int, default=40)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument("--grid-points", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, help="override the grid's 500 (quick runs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--naive",
        default="torch,lightning,heareval",
        help="comma-separated naive runs: torch, lightning, heareval (needs --heareval-python)",
    )
    parser.add_argument(
        "--heareval-python",
        default=".venv-hear/bin/python",
        help="python of a venv with heareval 2021.1.3 (hear-contract.md §5.3)",
    )
    parser.add_argument("--out", default="results/bench_protocols/tiny.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {"max_epochs": [args.max_epochs]} if args.max_epochs else None
    confs = grid_points({"task_name": "synthetic"}, "default", args.grid_points, overrides)
    train, valid, test = synthetic_task(args.train, args.valid, args.test, args.dim, args.classes)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {}
        for name, data in (("train", train), ("valid", valid), ("test", test)):
            for part in ("x", "y"):
                files[f"{name}_{part}"] = tmp / f"{name}_{part}.npy"
                np.save(files[f"{name}_{part}"], getattr(data, part))
        print(
            f"task: {args.train}/{args.valid}/{args.test} clips, {args.dim}-d, {args.classes} "
            f"classes; {len(confs)} grid points; {args.threads} torch thread(s)",
            flush=True,
        )
        results["batched"] = run_batched(confs, train, valid, test)
        print(f"batched          {results['batched']['seconds']:8.1f} s", flush=True)
        naive = set(args.naive.split(","))
        if "torch" in naive:
            results["naive-torch"] = run_naive_torch(confs, files, tmp / "torch")
            print(f"naive-torch      {results['naive-torch']['seconds']:8.1f} s", flush=True)
        if "lightning" in naive:
            results["naive-lightning"] = run_naive_lightning(confs, files, tmp / "lightning")
            print(f"naive-lightning  {results['naive-lightning']['seconds']:8.1f} s", flush=True)
        if "heareval" in naive:
            if args.max_epochs or not Path(args.heareval_python).is_file():
                print("heareval         skipped (needs --heareval-python and the full grid)")
            else:
                results["heareval"] = run_heareval(
                    str(Path(args.heareval_python).absolute()),
                    confs,
                    train,
                    valid,
                    test,
                    tmp / "heareval",
                    args.threads,
                )
                print(f"heareval         {results['heareval']['seconds']:8.1f} s", flush=True)
    base = results["batched"]
    print("\n| run | wall s | CPU s | speed-up wall / CPU | grid point | val top-1 | test top-1 |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
            f"{r['seconds'] / base['seconds']:.1f}x / {r['cpu_seconds'] / base['cpu_seconds']:.1f}x"
            f" | {r['selected_grid_point']} | {r['selected_validation_top1']:.4f} | "
            f"{r['test_top1']:.4f} |"
        )
    speedups = {
        kind: {k: round(v[key] / base[key], 2) for k, v in results.items()}
        for kind, key in (("wall", "seconds"), ("cpu", "cpu_seconds"))
    }
    write_json_atomic(
        args.out,
        {
            "arguments": vars(args),
            "grid": confs,
            "results": results,
            "speedup": speedups,
            "python": sys.version.split()[0],
            "machine": platform.platform(),
            "cpu_count": os.cpu_count(),
            "provenance": provenance.collect("cpu"),
        },
    )
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
