"""See backpropagation: drawings of a computation's forward and gradient graphs, gradient
flow and activation statistics during training, and a training report.

- ``draw(output, params=None, trace=None, depth=None, values=False)``: the forward graph
  and its gradient graph side by side (DOT; SVG/PNG/PDF through Graphviz; inline in
  Jupyter). ``record(model)`` groups the ops by the module that created them.
- ``draw_graph(graph)``: an ``nn.Graph`` from its declared structure.
- ``Monitor(model)``: per layer and step, gradient norms, update/weight ratios,
  activation statistics; warns about vanishing and exploding gradients.
- ``chainrule.viz.report.write_report``: the PNG plots and self-contained HTML page of a
  training run (``chainrule train --report``).

Plots need Matplotlib and rendered drawings need Graphviz (``pip install
'chainrule[viz]'`` and Debian's ``graphviz`` package); the DOT text needs neither.
"""

from chainrule.viz.drawing import Drawing, draw
from chainrule.viz.graph_module import draw_graph
from chainrule.viz.monitor import GradientFlowWarning, Monitor
from chainrule.viz.record import record

__all__ = ["Drawing", "GradientFlowWarning", "Monitor", "draw", "draw_graph", "record"]
