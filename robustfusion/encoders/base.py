"""The interface every modality encoder implements, and the encoder registry.

An encoder maps one modality ``x`` (``[B, D]`` or ``[B, T, D]``) to a fixed-size vector
``[B, out_dim]``. To take part in progressive fusion it also accepts an optional context
``[B, context_dim]``. A user-written encoder joins by subclassing :class:`ModalityEncoder`
(or simply providing the same attributes and ``forward`` signature)::

    class MyEncoder(ModalityEncoder):
        def __init__(self, in_dim, out_dim, context_dim=0):
            super().__init__(in_dim, out_dim, context_dim)
            self.inject = ContextInjection(in_dim, context_dim, "add")
            self.net = nn.Linear(self.inject.out_dim, out_dim)

        def forward(self, x, mask=None, context=None):
            return self.net(self.inject(x, context))
"""

from __future__ import annotations

from torch import Tensor, nn

from robustfusion.registry import Registry

__all__ = ["ENCODERS", "ModalityEncoder", "create_encoder", "list_encoders", "register_encoder"]

ENCODERS: Registry[nn.Module] = Registry("encoder")
register_encoder = ENCODERS.register


#: Size arguments of the registered encoders and the smallest value each may take.
SIZE_MINIMUMS = {"in_dim": 1, "out_dim": 1, "hidden_dim": 1, "num_heads": 1, "num_layers": 1, "dim_feedforward": 1,
                 "layers": 0, "context_dim": 0}


def create_encoder(name: str, **kwargs) -> nn.Module:
    """Build a registered encoder, e.g. ``create_encoder("gru", in_dim=74, out_dim=64)``.

    Raises:
        ValueError: a size argument below its minimum (:data:`SIZE_MINIMUMS`), e.g. ``layers=-1``.
    """
    for key, low in SIZE_MINIMUMS.items():
        value = kwargs.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value < low:
            raise ValueError(f"encoder {name!r}: {key}: expected a size >= {low}, found {value}")
    return ENCODERS.create(name, **kwargs)


def list_encoders() -> list[str]:
    return ENCODERS.names()


class ModalityEncoder(nn.Module):
    """Base class: ``forward(x, mask=None, context=None) -> [B, out_dim]``.

    Args:
        in_dim: feature size ``D`` of the modality.
        out_dim: size of the intermediate vector ``h_m``.
        context_dim: size of the back-connected context; ``0`` = no context port.

    ``mask`` is the ``[B, T]`` frame mask of sequence inputs (True = observed frame); an
    encoder must give the same output whatever is stored in unobserved frames.
    """

    def __init__(self, in_dim: int, out_dim: int, context_dim: int = 0) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.context_dim = in_dim, out_dim, context_dim

    def forward(self, x: Tensor, mask: Tensor | None = None, context: Tensor | None = None) -> Tensor:
        raise NotImplementedError
