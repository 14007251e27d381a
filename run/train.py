"""--experiment train: train the dense network and write its run directory."""

from run.common import prepare
from run.dense import train_dense
from run.reporting import reuse_note
from run.runs import dense_dir


def run(config) -> dict:
    ctx = prepare(config)
    _, metrics = train_dense(ctx)
    accuracy, loss = metrics["test_accuracy"], metrics["test_loss"]
    print(f"test accuracy {accuracy:.2f}%  loss {loss:.4f}  -> {dense_dir(config)}{reuse_note(metrics)}")
    return metrics
