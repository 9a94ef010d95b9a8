"""The synthetic affect benchmark: a seeded generative model with a Bayes-optimal oracle.

Generative model (all Gaussians independent; ``k`` shared latent factors, ``p`` private
factors per modality):

* shared latent ``s ~ N(0, I_k)``; per-modality private factors ``u_m ~ N(0, I_p)``;
* sentiment ``y = y_scale * w^T s + y_noise * e`` (``w`` a fixed unit vector, ``e ~ N(0, 1)``);
* emotion ``c = argmax(emotion_scale * W_e s + emotion_noise * e_6)`` over 6 classes;
* each modality ``m`` is a sequence of ``T_m`` frames of ``d_m`` dims,
  ``x_{m,t} = g_m(A_{m,t} s + B_{m,t} u_m + sigma_m * eps_{m,t})``, ``eps ~ N(0, I_{d_m})``;
  ``A_{m,t} = signal_m * r_{m,t} * G_{m,t} / sqrt(k)`` and ``B_{m,t} = private_m * H_{m,t} / sqrt(p)``
  with fixed Gaussian ``G, H`` and a per-frame weight ``r_{m,t}`` (log-normal, mean square 1):
  some frames carry more signal than others;
* ``g_m`` is a known invertible elementwise map (``identity``, ``sinh``, ``exp``, ``cube``);
* with ``variable_length`` each sample has ``L ~ U{ceil(min_length_fraction * T_m), ..., T_m}``
  real frames (then zero padding, ``frame_mask`` False).

The defaults make text strong, audio medium and vision weak (``signal`` 0.25 / 0.15 / 0.08),
like real MSA data: with seed 0 the oracle explains R^2 = 0.64 (text), 0.30 (audio),
0.10 (vision), 0.70 (all three) of the test-set sentiment variance (shared loadings).

Oracle: after ``g_m^{-1}`` every observed frame is linear-Gaussian in ``(s, u_m)``, so the
posterior of ``s`` given any subset of modalities and of frames is Gaussian in closed form.
Marginalising ``u_m`` with the Woodbury identity gives, per modality and sample (sums over
observed frames ``t``)::

    C_m  = sigma_m^2 I_p + sum_t B_t^T B_t
    J_m  = (sum_t A_t^T A_t - (sum_t A_t^T B_t) C_m^{-1} (sum_t B_t^T A_t)) / sigma_m^2
    h_m  = (sum_t A_t^T z_t - (sum_t A_t^T B_t) C_m^{-1} (sum_t B_t^T z_t)) / sigma_m^2
    Sigma = (I_k + sum_{m present} J_m)^{-1},   mu = Sigma sum_{m present} h_m

The Bayes-optimal sentiment prediction under squared error is ``E[y | x] = y_scale * w^T mu``
(with nothing observed: the prior mean 0); emotion probabilities are estimated by Monte-Carlo
over ``s ~ N(mu, Sigma)`` and the emotion noise, from a seeded generator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.data.dataset import MultimodalDataset

__all__ = [
    "DEFAULT_MODALITIES",
    "EMOTION_NAMES",
    "NONLINEARITIES",
    "ModalitySpec",
    "OracleOutput",
    "OraclePrediction",
    "SyntheticAffect",
    "SyntheticOracle",
    "load_synthetic",
    "oracle_predict",
]

EMOTION_NAMES = ("happy", "sad", "angry", "fear", "disgust", "surprise")  # CMU-MOSEI's six emotions
_SPLIT_STREAM = {"train": 1, "valid": 2, "test": 3}


def _np_g(name: str):
    return {"identity": lambda z: z, "sinh": np.sinh, "exp": np.exp, "cube": lambda z: z ** 3}[name]


def _torch_ginv(name: str):
    return {"identity": lambda x: x, "sinh": torch.asinh, "exp": torch.log,
            "cube": lambda x: torch.sign(x) * x.abs().pow(1.0 / 3.0)}[name]


NONLINEARITIES = ("identity", "sinh", "exp", "cube")


@dataclass(frozen=True)
class ModalitySpec:
    """One synthetic modality: ``frames`` x ``dim`` features, informativeness and ``g_m``.

    ``signal``: scale of ``A`` (shared-latent loading); ``private``: scale of ``B``;
    ``noise``: ``sigma_m``; ``nonlinearity``: one of :data:`NONLINEARITIES`.
    """

    frames: int = 10
    dim: int = 16
    signal: float = 0.2
    private: float = 1.0
    noise: float = 1.0
    nonlinearity: str = "identity"

    def __post_init__(self) -> None:
        if self.frames < 1 or self.dim < 1:
            raise ValueError(f"ModalitySpec: expected frames >= 1 and dim >= 1, found {self.frames}, {self.dim}")
        if self.noise <= 0:
            raise ValueError(f"ModalitySpec: expected noise > 0, found {self.noise}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"ModalitySpec: nonlinearity expected one of {NONLINEARITIES}, found {self.nonlinearity!r}")


DEFAULT_MODALITIES: dict[str, ModalitySpec] = {
    "text": ModalitySpec(frames=10, dim=24, signal=0.25, nonlinearity="identity"),
    "audio": ModalitySpec(frames=12, dim=16, signal=0.15, nonlinearity="sinh"),
    "vision": ModalitySpec(frames=8, dim=20, signal=0.08, nonlinearity="exp"),
}


@dataclass
class OraclePrediction:
    """Bayes-optimal outputs for a batch.

    Attributes:
        sentiment: ``[B, 1]`` posterior mean of ``y``.
        sentiment_var: ``[B, 1]`` posterior predictive variance of ``y`` (incl. label noise).
        emotion_probs: ``[B, 6]`` Monte-Carlo class probabilities (``None`` if not requested).
        mean: ``[B, k]`` posterior mean of ``s``; cov: ``[B, k, k]`` posterior covariance.
    """

    sentiment: Tensor
    sentiment_var: Tensor
    mean: Tensor
    cov: Tensor
    emotion_probs: Tensor | None = None


class SyntheticAffect:
    """The seeded generator and its closed-form posterior (see module docstring).

    Args:
        seed: fixes the parameters (``A``, ``B``, ``w``, ``W_e``, frame weights) and, per
            split, the samples (stream ``[seed, split index]`` of ``numpy.random.default_rng``).
        latent_dim: ``k``; private_dim: ``p``.
        modalities: ``{name: ModalitySpec | dict}`` (default :data:`DEFAULT_MODALITIES`);
            a dict updates the default spec of the same name, e.g. ``{"vision": {"signal": 0.2}}``.
        y_scale, y_noise: sentiment ``y = y_scale * w^T s + y_noise * e``.
        num_emotions, emotion_scale, emotion_noise: the emotion class model.
        frame_weight_std: std of ``log r_{m,t}`` (0 = every frame equally informative).
        shared_loadings: ``True`` (default): ``G_{m,t} = G_m`` and ``H_{m,t} = H_m`` for every
            frame, so frames differ only by their weight ``r_{m,t}`` (as in real features, where
            a frame means the same thing at every position); ``False``: an independent
            loading matrix per frame (much harder for position-agnostic encoders).
        variable_length, min_length_fraction: per-sample sequence lengths.
    """

    def __init__(self, seed: int = 0, latent_dim: int = 4, private_dim: int = 4,
                 modalities: Mapping[str, ModalitySpec | Mapping] | None = None, y_scale: float = 1.5,
                 y_noise: float = 0.3, num_emotions: int = 6, emotion_scale: float = 2.0,
                 emotion_noise: float = 0.5, frame_weight_std: float = 0.7, variable_length: bool = True,
                 min_length_fraction: float = 0.5, shared_loadings: bool = True) -> None:
        if latent_dim < 1 or private_dim < 0:
            raise ValueError(f"expected latent_dim >= 1 and private_dim >= 0, found {latent_dim}, {private_dim}")
        if not 0.0 < min_length_fraction <= 1.0:
            raise ValueError(f"min_length_fraction: expected a value in (0, 1], found {min_length_fraction}")
        specs: dict[str, ModalitySpec] = {}
        given = dict(modalities) if modalities is not None else dict(DEFAULT_MODALITIES)
        for name, spec in given.items():
            if isinstance(spec, ModalitySpec):
                specs[name] = spec
            elif isinstance(spec, Mapping):
                base = asdict(DEFAULT_MODALITIES.get(name, ModalitySpec()))
                unknown = sorted(set(spec) - set(base))
                if unknown:
                    raise ValueError(f"modality {name!r}: unknown spec keys {unknown}; valid keys {sorted(base)}")
                specs[name] = ModalitySpec(**{**base, **spec})
            else:
                raise ValueError(  # noqa: TRY004 - the project reports bad config values as ValueError
                    f"modality {name!r}: expected a ModalitySpec or dict, found {type(spec).__name__}")
        if not specs:
            raise ValueError("modalities: expected at least one modality, found none")
        self.seed, self.k, self.p = int(seed), int(latent_dim), int(private_dim)
        self.specs = specs
        self.y_scale, self.y_noise = float(y_scale), float(y_noise)
        self.num_emotions, self.emotion_scale, self.emotion_noise = int(num_emotions), float(emotion_scale), float(emotion_noise)
        self.variable_length, self.min_length_fraction = bool(variable_length), float(min_length_fraction)
        self.config = {"seed": self.seed, "latent_dim": self.k, "private_dim": self.p,
                       "modalities": {k: asdict(v) for k, v in specs.items()}, "y_scale": self.y_scale,
                       "y_noise": self.y_noise, "num_emotions": self.num_emotions,
                       "emotion_scale": self.emotion_scale, "emotion_noise": self.emotion_noise,
                       "frame_weight_std": float(frame_weight_std), "variable_length": self.variable_length,
                       "shared_loadings": bool(shared_loadings),
                       "min_length_fraction": self.min_length_fraction}
        rng = np.random.default_rng([self.seed, 0])
        w = rng.standard_normal(self.k)
        self.w = w / np.linalg.norm(w)
        self.W_e = rng.standard_normal((self.num_emotions, self.k))
        self.A: dict[str, np.ndarray] = {}
        self.B: dict[str, np.ndarray] = {}
        for name, sp in specs.items():
            r = np.exp(frame_weight_std * rng.standard_normal(sp.frames))
            r = r / np.sqrt(np.mean(r ** 2))
            G = rng.standard_normal((sp.frames, sp.dim, self.k))
            H = rng.standard_normal((sp.frames, sp.dim, self.p))
            if shared_loadings:
                G, H = np.repeat(G[:1], sp.frames, axis=0), np.repeat(H[:1], sp.frames, axis=0)
            self.A[name] = sp.signal * r[:, None, None] * G / math.sqrt(self.k)
            self.B[name] = sp.private * H / math.sqrt(max(self.p, 1))
        self._torch_cache: dict[str, tuple[Tensor, ...]] = {}

    # ------------------------------------------------------------------ description
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.specs)

    @property
    def modality_dims(self) -> dict[str, int]:
        return {k: v.dim for k, v in self.specs.items()}

    def __repr__(self) -> str:
        mods = ", ".join(f"{k}={v.frames}x{v.dim}(signal={v.signal}, g={v.nonlinearity})" for k, v in self.specs.items())
        return f"SyntheticAffect(seed={self.seed}, k={self.k}, p={self.p}, {mods})"

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, split: str = "train") -> dict[str, object]:
        """Draw ``n`` samples of ``split`` (deterministic for ``(seed, split, n)``).

        Returns ``{"features": {m: [n, T_m, d_m] float32}, "frame_masks": {m: [n, T_m] bool},
        "latent": [n, k], "sentiment": [n] float32, "emotion": [n] int64}``.
        """
        if split not in _SPLIT_STREAM:
            raise ValueError(f"split: expected one of {list(_SPLIT_STREAM)}, found {split!r}")
        if n < 1:
            raise ValueError(f"n: expected >= 1 samples, found {n}")
        rng = np.random.default_rng([self.seed, _SPLIT_STREAM[split]])
        s = rng.standard_normal((n, self.k))
        y = self.y_scale * s @ self.w + self.y_noise * rng.standard_normal(n)
        logits = self.emotion_scale * s @ self.W_e.T + self.emotion_noise * rng.standard_normal((n, self.num_emotions))
        emotion = logits.argmax(axis=1)
        feats, masks = {}, {}
        for name, sp in self.specs.items():
            u = rng.standard_normal((n, self.p))
            z = (np.einsum("tdk,nk->ntd", self.A[name], s) + np.einsum("tdp,np->ntd", self.B[name], u)
                 + sp.noise * rng.standard_normal((n, sp.frames, sp.dim)))
            x = _np_g(sp.nonlinearity)(z)
            if self.variable_length:
                lo = max(1, math.ceil(self.min_length_fraction * sp.frames))
                lengths = rng.integers(lo, sp.frames + 1, size=n)
            else:
                lengths = np.full(n, sp.frames)
            mask = np.arange(sp.frames)[None, :] < lengths[:, None]
            feats[name] = (x * mask[..., None]).astype(np.float32)
            masks[name] = mask
        return {"features": feats, "frame_masks": masks, "latent": s, "sentiment": y.astype(np.float32),
                "emotion": emotion.astype(np.int64)}

    def dataset(self, n: int, split: str = "train", target: str = "sentiment", name: str = "synthetic") -> MultimodalDataset:
        """A :class:`MultimodalDataset` of ``n`` samples; ``target`` is ``"sentiment"``
        (regression, ``[N]``) or ``"emotion"`` (classification, 6 classes).

        ``meta`` holds ``"generator"`` (this object), ``"oracle"`` (a :class:`SyntheticOracle`
        for ``target``), the other target, and the latent ``s``.
        """
        if target not in ("sentiment", "emotion"):
            raise ValueError(f"target: expected 'sentiment' or 'emotion', found {target!r}")
        d = self.sample(n, split)
        if target == "sentiment":
            targets, task, k = d["sentiment"], "regression", 1
        else:
            targets, task, k = d["emotion"], "classification", self.num_emotions
        meta = {"generator": self, "oracle": SyntheticOracle(self, target=target), "split": split,
                "target": target, "sentiment": d["sentiment"], "emotion": d["emotion"], "latent": d["latent"],
                "label_names": EMOTION_NAMES[: self.num_emotions] if target == "emotion" else None,
                "config": self.config}
        return MultimodalDataset(d["features"], targets, task=task, num_outputs=k, frame_masks=d["frame_masks"],
                                 ids=[f"{split}_{i}" for i in range(n)], name=name, meta=meta)

    def splits(self, n_train: int = 1500, n_valid: int = 500, n_test: int = 500, target: str = "sentiment",
               name: str = "synthetic") -> dict[str, MultimodalDataset]:
        """``{"train", "valid", "test": MultimodalDataset}``."""
        return {s: self.dataset(n, s, target, name) for s, n in (("train", n_train), ("valid", n_valid), ("test", n_test))}

    # ------------------------------------------------------------------ posterior
    def _params(self, name: str, device) -> tuple[Tensor, ...]:
        key = f"{name}@{device}"
        if key not in self._torch_cache:
            A = torch.as_tensor(self.A[name], dtype=torch.float64, device=device)
            B = torch.as_tensor(self.B[name], dtype=torch.float64, device=device)
            self._torch_cache[key] = (A, B, torch.einsum("tdk,tdl->tkl", A, A), torch.einsum("tdk,tdp->tkp", A, B),
                                      torch.einsum("tdp,tdq->tpq", B, B))
        return self._torch_cache[key]

    def posterior(self, batch: MultimodalBatch) -> tuple[Tensor, Tensor]:
        """Posterior ``N(mu, Sigma)`` of ``s`` given what ``batch`` has observed.

        Uses the presence mask (absent modalities contribute nothing) and the frame masks
        (unobserved frames contribute nothing). Modalities of the generator missing from
        ``batch.inputs`` count as absent.

        Returns:
            ``mu`` ``[B, k]`` and ``Sigma`` ``[B, k, k]`` (float64).

        Raises:
            ValueError: an unknown modality name or a feature shape other than ``[B, T_m, d_m]``.
        """
        unknown = [m for m in batch.modalities if m not in self.specs]
        if unknown:
            raise ValueError(f"batch has modalities {unknown} unknown to the generator (it has {list(self.specs)})")
        b, dev = batch.batch_size, batch.device
        prec = torch.eye(self.k, dtype=torch.float64, device=dev).expand(b, self.k, self.k).clone()
        h = torch.zeros(b, self.k, dtype=torch.float64, device=dev)
        for name in batch.modalities:
            sp = self.specs[name]
            x = batch.inputs[name]
            if tuple(x.shape[1:]) != (sp.frames, sp.dim):
                raise ValueError(f"modality {name!r}: expected shape [B, {sp.frames}, {sp.dim}], found {tuple(x.shape)}")
            fm = batch.frame_mask(name)
            obs = torch.ones(b, sp.frames, dtype=torch.bool, device=dev) if fm is None else fm.to(dev)
            obs = obs & batch.present_mask(name)[:, None]
            wgt = obs.to(torch.float64)
            z = _torch_ginv(sp.nonlinearity)(x.to(torch.float64))
            z = torch.where(obs[..., None], z, torch.zeros((), dtype=torch.float64, device=dev))
            A, B, AtA, AtB, BtB = self._params(name, dev)
            s2 = sp.noise ** 2
            AA = torch.einsum("bt,tkl->bkl", wgt, AtA)
            AB = torch.einsum("bt,tkp->bkp", wgt, AtB)
            BB = torch.einsum("bt,tpq->bpq", wgt, BtB)
            Az = torch.einsum("btd,tdk->bk", z, A)
            Bz = torch.einsum("btd,tdp->bp", z, B)
            C = s2 * torch.eye(self.p, dtype=torch.float64, device=dev) + BB
            sol = torch.linalg.solve(C, torch.cat([AB.transpose(1, 2), Bz[..., None]], dim=2))  # [b, p, k+1]
            prec = prec + (AA - AB @ sol[..., : self.k]) / s2
            h = h + (Az - (AB @ sol[..., self.k:]).squeeze(-1)) / s2
        prec = 0.5 * (prec + prec.transpose(1, 2))
        L = torch.linalg.cholesky(prec)
        cov = torch.cholesky_inverse(L)
        mean = torch.cholesky_solve(h[..., None], L).squeeze(-1)
        return mean, cov

    def oracle_predict(self, batch: MultimodalBatch, emotion: bool = True, num_samples: int = 2000,
                       seed: int = 0) -> OraclePrediction:
        """Bayes-optimal predictions for whatever ``batch`` has observed (module docstring).

        Args:
            emotion: also estimate emotion probabilities (Monte-Carlo, ``num_samples`` draws per
                sample from a CPU generator seeded with ``seed``: the same batch gives the same
                probabilities).
        """
        mean, cov = self.posterior(batch)
        w = torch.as_tensor(self.w, dtype=torch.float64, device=mean.device)
        sent = self.y_scale * mean @ w
        var = self.y_scale ** 2 * torch.einsum("k,bkl,l->b", w, cov, w) + self.y_noise ** 2
        probs = None
        if emotion:
            g = torch.Generator().manual_seed(int(seed))
            b = mean.shape[0]
            L = torch.linalg.cholesky(cov + 1e-12 * torch.eye(self.k, dtype=torch.float64, device=mean.device)).cpu()
            eps = torch.randn(b, num_samples, self.k, generator=g, dtype=torch.float64)
            s = mean.cpu()[:, None, :] + torch.einsum("bkl,bnl->bnk", L, eps)
            We = torch.as_tensor(self.W_e, dtype=torch.float64)
            logits = self.emotion_scale * s @ We.T + self.emotion_noise * torch.randn(
                b, num_samples, self.num_emotions, generator=g, dtype=torch.float64)
            counts = torch.nn.functional.one_hot(logits.argmax(-1), self.num_emotions).sum(1).to(torch.float64)
            probs = (counts / num_samples).to(mean.device).float()
        return OraclePrediction(sentiment=sent[:, None].float(), sentiment_var=var[:, None].float(), mean=mean,
                                cov=cov, emotion_probs=probs)


def oracle_predict(batch: MultimodalBatch, generator: SyntheticAffect, **kwargs) -> OraclePrediction:
    """Functional form of :meth:`SyntheticAffect.oracle_predict`."""
    return generator.oracle_predict(batch, **kwargs)


@dataclass
class OracleOutput:
    """What ``SyntheticOracle(batch)`` returns: ``prediction`` ``[B, K]``, the field a model's
    :class:`~robustfusion.models.ModelOutput` has (the data layer does not import the models)."""

    prediction: Tensor


class SyntheticOracle(nn.Module):
    """The oracle as a model: ``predict(batch) -> [B, K]``, ``forward(batch) -> OracleOutput``.

    ``target="sentiment"``: ``[B, 1]`` posterior mean of ``y`` (task ``"regression"``).
    ``target="emotion"``: ``[B, 6]`` log-probabilities (task ``"classification"``; models emit
    logits, and ``softmax`` of these returns the oracle's probabilities; probabilities are
    clamped at ``1e-6`` before the log so no class has ``-inf``), or the probabilities
    themselves with ``emotion_output="probs"``. ``num_samples`` Monte-Carlo draws per sample
    from a generator seeded with ``seed``.

    It has no parameters; ``modality_dims``, ``task``, ``num_outputs`` mirror a
    :class:`~robustfusion.models.base.MultimodalModel`, so the robustness evaluator can score
    it on the same drop patterns as any model.
    """

    supports_latent_reuse = False
    registry_name = "oracle"

    def __init__(self, generator: SyntheticAffect, target: str = "sentiment", num_samples: int = 1000,
                 seed: int = 0, emotion_output: str = "log_probs") -> None:
        super().__init__()
        if target not in ("sentiment", "emotion"):
            raise ValueError(f"target: expected 'sentiment' or 'emotion', found {target!r}")
        if emotion_output not in ("log_probs", "probs"):
            raise ValueError(f"emotion_output: expected 'log_probs' or 'probs', found {emotion_output!r}")
        self.emotion_output = emotion_output
        self.generator, self.target = generator, target
        self.num_samples, self.seed = int(num_samples), int(seed)
        self.modality_dims = generator.modality_dims
        self.modalities = generator.modalities
        self.task = "regression" if target == "sentiment" else "classification"
        self.num_outputs = 1 if target == "sentiment" else generator.num_emotions

    def __repr__(self) -> str:
        return f"SyntheticOracle(target={self.target!r}, {self.generator!r})"

    @torch.no_grad()
    def predict(self, batch: MultimodalBatch) -> Tensor:
        out = self.generator.oracle_predict(batch, emotion=self.target == "emotion", num_samples=self.num_samples,
                                            seed=self.seed)
        if self.target == "sentiment":
            return out.sentiment
        if self.emotion_output == "probs":
            return out.emotion_probs
        return out.emotion_probs.clamp_min(1e-6).log()

    def forward(self, batch: MultimodalBatch) -> OracleOutput:
        return OracleOutput(prediction=self.predict(batch))


def load_synthetic(path=None, split_seed: int = 0, seed: int = 0, n_train: int = 1500, n_valid: int = 500,
                   n_test: int = 500, target: str = "sentiment", name: str = "synthetic",
                   **generator_options) -> dict[str, MultimodalDataset]:
    """Registry entry ``"synthetic"``: ``SyntheticAffect(seed, **generator_options).splits(...)``.

    ``path`` and ``split_seed`` are unused (the splits are separate seeded streams).
    """
    if path is not None:
        raise ValueError(f"dataset 'synthetic' takes no path (it is generated), found path={path!r}")
    import inspect

    valid = [k for k in inspect.signature(SyntheticAffect).parameters if k != "seed"]
    unknown = sorted(set(generator_options) - set(valid))
    if unknown:
        raise ValueError(f"dataset 'synthetic': unknown options {unknown}; valid options "
                         f"{sorted(['seed', 'n_train', 'n_valid', 'n_test', 'target', *valid])}")
    for key, n in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"dataset 'synthetic': data.options.{key}: expected a sample count >= 1, found {n!r}")
    gen = SyntheticAffect(seed=seed, **generator_options)
    return gen.splits(n_train, n_valid, n_test, target=target, name=name)
