"""The training report: PNG plots and one self-contained HTML page for a run.

``chainrule train --report`` attaches a ``Monitor`` to the model (``report_monitor``) and,
once training ends, calls ``write_report``, which writes into ``RUN/report/``:

| file | content |
|---|---|
| ``curves.png`` | loss and accuracy per epoch, train and test |
| ``lr.png`` | the learning rate per epoch |
| ``gradient_flow.png`` | ‖∂L/∂W‖ per layer over the training steps, and per layer |
| ``activations.png`` | histograms of the activations at the last sampled step |
| ``confusion.png`` | the confusion matrix with the class names |
| ``worst.png`` | the test images the model gets most wrong |
| ``report.html`` | all of the above embedded as ``data:`` URIs, the options, the summary |

The Python equivalent: ``train(cfg, out=..., report=True)``.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from chainrule.viz import plots
from chainrule.viz.drawing import write_bytes_atomic
from chainrule.viz.monitor import Monitor

REPORT_DIR = "report"
FIGURES = {
    "curves.png": "Loss and accuracy",
    "lr.png": "Learning rate",
    "gradient_flow.png": "Gradient flow",
    "activations.png": "Activations",
    "confusion.png": "Confusion matrix",
    "worst.png": "Most wrong test images",
}


def report_monitor(run: Any, points: int = 200) -> Monitor:
    """A ``Monitor`` on ``run.model`` sampling about ``points`` steps over the run."""
    total = run.cfg.epochs * len(run.loader)
    return Monitor(run.model, every=max(1, total // points))


def _images(raw: Any) -> Any:
    """Test inputs as (n, height, width) images for display."""
    import numpy

    x = numpy.asarray(raw, dtype="float64")
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim == 3:
        return x
    side = math.isqrt(int(numpy.prod(x.shape[1:])))
    if side * side == numpy.prod(x.shape[1:]):
        return x.reshape(len(x), side, side)
    return x.reshape(len(x), 1, -1)  # not square: one row of pixels per example


def _probabilities(run: Any) -> Any:
    import chainrule as cr

    run.model.eval()
    chunks = []
    with cr.no_grad():
        for start in range(0, len(run.y_test), 1000):
            chunks.append(run.model(run.x_test[start : start + 1000]).softmax(dim=1).numpy())
    import numpy

    return numpy.concatenate(chunks)


def write_report(run: Any, monitor: Monitor | None, summary: dict[str, Any]) -> Path:
    """Write the plots and ``report.html`` of a finished run into ``run.out/report``.

    Args:
        run: the ``chainrule.training.loop.Run`` (history, model, test split, classes).
        monitor: the monitor attached during training (None: no gradient plots).
        summary: the run's summary (``summary.json``).

    Returns:
        The path of ``report.html``.
    """
    folder = Path(run.out) / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {
        "curves.png": plots.curves(run.history),
        "lr.png": plots.learning_rate(run.history),
    }
    if monitor is not None:
        monitor.finish()
        figures["gradient_flow.png"] = plots.gradient_flow(monitor)
        figures["activations.png"] = plots.activation_histograms(monitor)
    figures["confusion.png"] = plots.confusion(summary["confusion"], run.classes)
    figures["worst.png"] = plots.worst_predictions(
        _images(run.x_test_raw), run.y_test, _probabilities(run), run.classes
    )
    written = {name: plots.save_figure(fig, folder / name) for name, fig in figures.items()}
    page = folder / "report.html"
    write_bytes_atomic(page, _html(run, monitor, summary, written).encode("utf-8"))
    return page


def _table(rows: dict[str, Any]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


def _html(
    run: Any, monitor: Monitor | None, summary: dict[str, Any], images: dict[str, Path]
) -> str:
    options = json.loads(run.cfg.to_json())
    options.pop("extra", None)
    facts = {
        "dataset": summary["dataset"],
        "test accuracy": f"{summary['test_accuracy']:.2%}",
        "test loss": f"{summary['test_loss']:.4f}",
        "best test accuracy": (
            f"{summary['best_test_accuracy']:.2%} (epoch {summary['best_epoch']})"
        ),
        "epochs": summary["epochs"],
        "parameters": f"{summary['parameters']:,}",
        "seconds per epoch": f"{summary['mean_epoch_seconds']:.2f}",
    }
    if monitor is not None:
        kinds = sorted({f.kind for f in monitor.flags})
        facts["gradient flags"] = (
            ", ".join(
                f"{kind}: {sum(f.kind == kind for f in monitor.flags)} (layer, step) pairs"
                for kind in kinds
            )
            or "none (no vanishing or exploding gradients seen)"
        )
        facts["monitored steps"] = f"every {monitor.every} of {monitor.step}"
    sections = []
    for name, path in images.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        sections.append(
            f'<figure><img alt="{FIGURES[name]}" src="data:image/png;base64,{data}">'
            f"<figcaption>{FIGURES[name]} ({name})</figcaption></figure>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chainrule run: {html.escape(str(run.out))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222;
       padding: 0 1em; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.2em; margin-top: 1.5em; }}
.cols {{ display: flex; gap: 2em; flex-wrap: wrap; }}
table {{ border-collapse: collapse; font-size: 0.92em; }}
th, td {{ text-align: left; padding: 2px 10px; border-bottom: 1px solid #ddd; }}
th {{ font-weight: 600; color: #444; }}
figure {{ margin: 1.2em 0; }} img {{ max-width: 100%; border: 1px solid #eee; }}
figcaption {{ color: #555; font-size: 0.9em; }}
pre {{ background: #f6f6f6; padding: 0.6em; font-size: 0.85em; overflow-x: auto; }}
</style></head>
<body>
<h1>chainrule training report</h1>
<p>Run directory: <code>{html.escape(str(run.out))}</code></p>
<div class="cols">
<div><h2>Summary</h2>{_table(facts)}</div>
<div><h2>Options</h2>{_table(options)}</div>
</div>
<h2>Model</h2><pre>{html.escape(summary.get("model", ""))}</pre>
<h2>Figures</h2>
{"".join(sections)}
</body></html>
"""
