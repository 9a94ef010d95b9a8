"""Tables (markdown, LaTeX) and plots (matplotlib, Agg, imported lazily) drawn from the
long-format result rows of :mod:`robustfusion.results`, never from typed numbers."""

from robustfusion.reporting._slice import METRIC_LABELS, PROTOCOL_LABELS, Slice, select
from robustfusion.reporting.plots import plot_subsets, plot_sweep
from robustfusion.reporting.report import default_metrics, write_report
from robustfusion.reporting.tables import best_models, format_cell, latex_table, markdown_table

__all__ = [
           "METRIC_LABELS",
           "PROTOCOL_LABELS",
           "Slice",
           "best_models",
           "default_metrics",
           "format_cell",
           "latex_table",
           "markdown_table",
           "plot_subsets",
           "plot_sweep",
           "select",
           "write_report",
]
