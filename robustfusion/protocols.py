"""Test-time robustness protocols: one registry entry each (name, levels, labels, how it drops).

Every fact about a protocol lives in its :class:`Protocol` entry, which the evaluator
(:mod:`robustfusion.robustness`), the result rows' level defaults (:mod:`robustfusion.results`),
the reports and plots (:mod:`robustfusion.reporting`) and the run config read:

* ``subsets``: keep exactly each non-empty subset of the modalities (GMC's partial-observation
  protocol, Poklukar et al., arXiv 2202.03390, Table 3); one condition per subset, no levels;
* ``sample_rate``: each (sample, modality) dropped independently with probability ``level``
  (:func:`robustfusion.dropping.drop_samples`);
* ``frame_rate``: each frame of each sequence modality dropped with rate ``level``
  (TFR-Net, EMT-DLFR; LNLN's test protocol, whose headline number is the mean over 0.0..0.9),
  one generator per modality (:func:`robustfusion.dropping.drop_frames`); refused on
  utterance-level data;
* ``missing_rate``: each modality of each sample missing with rate ``level``, at least one always
  kept, levels 0.0..0.7 (GCNet / CPM-Net, :func:`robustfusion.dropping.drop_to_missing_rate`).

Adding a protocol is one :func:`register_protocol` call with a :class:`Protocol` (and its tests):
the evaluator, the config check, the tables and the plots pick it up by name.

Every drop draws from its own generator seeded from ``(seed, protocol, level[, modality])``
(:func:`robustfusion.dropping.protocol_generator`), so every model sees the identical pattern.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from robustfusion.batch import MultimodalBatch
from robustfusion.dropping import (
    all_subsets,
    drop_frames,
    drop_samples,
    drop_to_missing_rate,
    keep_subset,
    protocol_generator,
    subset_name,
)
from robustfusion.registry import Registry

__all__ = [
    "DEFAULT_LEVELS",
    "MISSING_RATE_LEVELS",
    "SUBSETS",
    "SWEEP_SUBSET",
    "Condition",
    "Dropper",
    "Protocol",
    "default_protocols",
    "get_protocol",
    "protocol_label",
    "protocol_names",
    "register_protocol",
    "sweep_protocols",
    "unregister_protocol",
]

#: The sweep rates 0.0, 0.1, ..., 1.0 (rounded to 6 digits, as result rows store levels).
DEFAULT_LEVELS = tuple(round(0.1 * i, 6) for i in range(11))
#: ``missing_rate`` rates 0.0, 0.1, ..., 0.7 (GCNet's, three modalities, at least one kept).
MISSING_RATE_LEVELS = tuple(round(0.1 * i, 6) for i in range(8))
#: The protocol that keeps each non-empty subset of the modalities (the subsets table).
SUBSETS = "subsets"
#: ``subset`` of every sweep row (all modalities are candidates for dropping).
SWEEP_SUBSET = "all"

#: One evaluation condition of a protocol: ``(level, subset label)``; ``level`` is ``None`` for
#: a protocol without levels (``subsets``), the subset label :data:`SWEEP_SUBSET` for a sweep.
Condition = tuple[float | None, str]
#: Drops modalities / frames of one batch (stateful: streams its generator over the batches).
Dropper = Callable[[MultimodalBatch], MultimodalBatch]


@dataclass(frozen=True)
class Protocol:
    """One test-time protocol.

    Attributes:
        name: registry name, written into the ``protocol`` column of result rows.
        label: axis / table heading (with the unit of the level).
        short_label: the phrase plot titles use (``"<metric> vs <short_label>"``).
        make_dropper: ``(seed, level, subset, modalities, keep_at_least_one) -> Dropper``; called
            once per condition and evaluation, the dropper is then applied to every batch in order.
        default_levels: the rates evaluated when none are given; ``()`` for a protocol without
            levels (it is then not a sweep: no AUILC, one condition per modality subset).
        reuses_latents: the drop changes the presence mask only, so a model with
            ``supports_latent_reuse`` may predict it from latents encoded once per batch.
        needs_frames: the drop acts on frames; refused on utterance-level data.
        in_default: evaluated when no protocol is named (``eval.protocols`` default).
        takes_plain_levels: a plain list in ``levels`` / ``eval.levels`` (no ``{protocol: levels}``
            mapping) sets its rates (the 0-1 sweeps); otherwise it keeps ``default_levels``.
        mean_summary: the evaluator adds the mean-over-0.0..0.9 summary row (LNLN's headline).
    """

    name: str
    label: str
    short_label: str
    make_dropper: Callable[[int, float | None, str, Sequence[str], bool], Dropper]
    default_levels: tuple[float, ...] = ()
    reuses_latents: bool = True
    needs_frames: bool = False
    in_default: bool = True
    takes_plain_levels: bool = False
    mean_summary: bool = False

    @property
    def is_sweep(self) -> bool:
        """A protocol with rates (a curve per model, AUILC summaries), not a table of subsets."""
        return bool(self.default_levels)

    def conditions(self, modalities: Sequence[str], levels: Sequence[float]) -> list[Condition]:
        """The conditions in output order: each subset (no levels) or each level of a sweep."""
        if not self.is_sweep:
            return [(None, subset_name(s)) for s in all_subsets(modalities)]
        return [(float(lv), SWEEP_SUBSET) for lv in levels]


_PROTOCOLS: Registry[Protocol] = Registry("protocol")


def register_protocol(protocol: Protocol) -> Protocol:
    """Add ``protocol`` to the registry (``ValueError`` if another one holds its name, ``TypeError`` for
    anything but a :class:`Protocol`)."""
    if not isinstance(protocol, Protocol):
        raise TypeError(f"register_protocol: expected a Protocol, found {type(protocol).__name__}")
    return _PROTOCOLS.add(protocol.name, protocol)


def unregister_protocol(name: str) -> None:
    """Remove ``name`` from the registry (``KeyError`` if it is not registered)."""
    _PROTOCOLS.remove(name)


def get_protocol(name: str) -> Protocol:
    """The registered protocol ``name`` (``KeyError`` naming the registered ones otherwise)."""
    return _PROTOCOLS.get(name)


def protocol_names() -> tuple[str, ...]:
    """Every registered protocol, in registration (= display) order."""
    return tuple(_PROTOCOLS.ordered())


def default_protocols() -> tuple[str, ...]:
    """The protocols evaluated when none are named."""
    return tuple(n for n in protocol_names() if get_protocol(n).in_default)


def sweep_protocols() -> tuple[str, ...]:
    """The registered protocols that have levels."""
    return tuple(n for n in protocol_names() if get_protocol(n).is_sweep)


def protocol_label(name: str) -> str:
    """The axis / table label of ``name`` (the name itself for an unregistered protocol)."""
    return get_protocol(name).label if name in _PROTOCOLS else name


# ---------------------------------------------------------------------------- built-ins
def _keep_subset(seed: int, level: float | None, subset: str, modalities: Sequence[str],
                 keep_at_least_one: bool) -> Dropper:
    kept = {subset_name(s): s for s in all_subsets(modalities)}[subset]
    return lambda batch: keep_subset(batch, kept)


def _sample_rate(seed: int, level: float | None, subset: str, modalities: Sequence[str],
                 keep_at_least_one: bool) -> Dropper:
    gen = protocol_generator(seed, "sample_rate", level)
    return lambda batch: drop_samples(batch, level, gen, keep_at_least_one)


def _frame_rate(seed: int, level: float | None, subset: str, modalities: Sequence[str],
                keep_at_least_one: bool) -> Dropper:
    gens = {m: protocol_generator(seed, "frame_rate", level, m) for m in modalities}
    return lambda batch: drop_frames(batch, level, gens)


def _missing_rate(seed: int, level: float | None, subset: str, modalities: Sequence[str],
                  keep_at_least_one: bool) -> Dropper:
    gen = protocol_generator(seed, "missing_rate", level)
    return lambda batch: drop_to_missing_rate(batch, level, gen)


register_protocol(Protocol(SUBSETS, "modality subset", "modality subset", _keep_subset))
register_protocol(Protocol("sample_rate", "modality drop rate (per sample and modality)", "modality drop rate",
                           _sample_rate, DEFAULT_LEVELS, takes_plain_levels=True))
register_protocol(Protocol("frame_rate", "frame drop rate (per frame of each sequence)", "frame drop rate",
                           _frame_rate, DEFAULT_LEVELS, reuses_latents=False, needs_frames=True,
                           takes_plain_levels=True, mean_summary=True))
register_protocol(Protocol("missing_rate", "modality missing rate, at least one kept (per sample and modality)",
                           "modality missing rate (one kept)", _missing_rate, MISSING_RATE_LEVELS, in_default=False))
