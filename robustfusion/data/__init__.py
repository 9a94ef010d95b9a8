"""Datasets: `MultimodalDataset` and the loaders for published formats."""

from robustfusion.data.dataset import MultimodalDataset

__all__ = ["MultimodalDataset"]
