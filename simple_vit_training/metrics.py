"""Per-epoch history (saved with every checkpoint), metrics.json and the tutorial's metrics.png."""

import json
from pathlib import Path

import evaluate
from matplotlib.figure import Figure

from . import PROJECT_ROOT
from .atomic_files import write_atomically

# A local `evaluate` module: evaluate.load("accuracy") would fetch the metric script from the Hub.
ACCURACY_METRIC = PROJECT_ROOT / "metrics" / "accuracy"


def load_accuracy_metric():
    return evaluate.load(str(ACCURACY_METRIC))


class TrainingHistory:
    """Per-epoch metrics and elapsed training time; registered with `accelerator.register_for_checkpointing`."""

    def __init__(self):
        self.metrics = {"epoch": [], "train_loss": [], "eval_loss": [], "eval_accuracy": []}
        self.wall_time_seconds = 0.0
        self.timings = {"train_seconds": [], "epoch_seconds": []}  # per epoch: training steps, and with evaluation

    @property
    def epochs_done(self):
        return len(self.metrics["epoch"])

    def record(self, epoch, train_loss, eval_loss, eval_accuracy, train_seconds, epoch_seconds):
        for key, value in zip(self.metrics, (epoch, train_loss, eval_loss, eval_accuracy)):
            self.metrics[key].append(value)
        self.wall_time_seconds += epoch_seconds
        self.timings["train_seconds"].append(train_seconds)
        self.timings["epoch_seconds"].append(epoch_seconds)

    def state_dict(self):
        return {"metrics": self.metrics, "wall_time_seconds": self.wall_time_seconds, "timings": self.timings}

    def load_state_dict(self, state):
        self.metrics = state["metrics"]
        self.wall_time_seconds = state["wall_time_seconds"]
        self.timings = state["timings"]


def write_metrics(path: Path, history: TrainingHistory, **run_facts):
    """metrics.json: the history so far plus facts about the run (world size, sample counts, args, ...),
    replaced atomically so that a crash mid-write leaves the previous epoch's file whole."""
    summary = {**history.metrics, "wall_time_seconds": history.wall_time_seconds, **history.timings, **run_facts}
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))


def metrics_figure(metrics) -> Figure:
    """The tutorial's figure: train and test loss, and test accuracy, per epoch. Every epoch is a marker too: a
    one-epoch run is a single point, which a line alone does not draw. (A bare Figure, not pyplot: no global
    backend to switch, no window.)"""
    fig = Figure(figsize=(12, 4.5))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(metrics["epoch"], metrics["train_loss"], marker="o", markersize=3, label="train loss")
    ax1.plot(metrics["epoch"], metrics["eval_loss"], marker="o", markersize=3, label="test loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(metrics["epoch"], metrics["eval_accuracy"], marker="o", markersize=3, color="tab:green")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("test accuracy")
    fig.tight_layout()
    return fig


def plot_metrics(metrics, path):
    """metrics_figure written to `path` as a PNG, atomically."""
    fig = metrics_figure(metrics)
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
