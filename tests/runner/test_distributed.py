"""``robustfusion train`` under ``torchrun`` (gloo on CPU) and ``train.tensorboard``.

Two ranks with the same global batch end with the single-process numbers (float summation order
aside: the tolerances, and why each is what it is, are above ``_assert_same_run``), only rank 0 writes the run directory, and ``--resume`` under torchrun completes a killed
run. The configs compared for equality have internal dropout 0: a rank draws its dropout masks
for its shard only (see ``robustfusion.runner.distributed``).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from robustfusion.batch import MultimodalBatch
from robustfusion.models.registry import create_model
from robustfusion.runner import distributed as ddp
from robustfusion.runner.api import train_run
from robustfusion.runner.config import load_config
from robustfusion.runner.epoch_log import read_metrics

ROOT = Path(__file__).resolve().parents[2]
GMC_PF = str(ROOT / "configs" / "synthetic" / "gmc_pf.yaml")
# 99 training samples in batches of 32: the last batch (3) is split 1 / 2 between the two ranks;
# modality dropout, monitor_subsets and both calibrations are on, as in the shipped config
TINY = ["data.options.n_train=99", "data.options.n_valid=48", "data.options.n_test=48", "train.epochs=3",
        "train.batch_size=32", "model.params.hidden_dim=8", "model.params.head_dropout=0",
        "model.params.joint_kwargs.dropout=0", "model.params.joint_kwargs.encoder_kwargs.dropout=0",
        "train.num_threads=1", "train.progress=false"]
# Why these tolerances (two ranks sum each gradient as two float32 partial sums joined by an
# all-reduce; one process sums it in one pass, so every step differs by a few float32 ulps, ~1e-7):
# - TRAINED: what training itself produces (parameters, per-epoch losses, the selection value) after
#   a handful of Adam steps differs by float32 rounding only; measured max |diff| 7.5e-8 on
#   parameters and 2e-6 relative on per-epoch numbers, so rtol 1e-5 / atol 1e-6 leaves 5x headroom
#   and still fails on any real divergence (a wrong shard, a missing all-reduce: differences ~1e-2).
# - FIT: the post-hoc calibrations are fits of their own on a flat objective. Their objective values
#   agree like TRAINED (1e-6), but their argmin does not: full-batch Adam (lr 0.05) keeps stepping by
#   ~lr while its gradient is at rounding level, so the fusion logits may land anywhere within ~lr
#   (measured 7e-3); the L1 read-out picks a scale on a 0.005 grid (a near-tie may move it one step)
#   and a shift that is a median of residuals (one residual may swap for the next).
# - FINAL: the final valid/test metrics are computed after those fits. MAE sits at the L1 fit's
#   optimum (first-order insensitive: measured 5e-6 relative); Corr of near-constant predictions
#   amplifies them (measured 0.18156 against 0.18180 on 48 samples), so it gets an absolute 0.01,
#   far below its sampling resolution (standard error ~1/sqrt(48) = 0.14); a thresholded metric
#   (accuracy, F1) may flip one of the 48 samples whose prediction sits on the threshold (1/48 = 0.021,
#   up to about twice that for F1).
RTOL, ATOL = 1e-5, 1e-6
FIT_ATOL = {"logits": 0.05, "scale": 0.0101, "shift": 0.01}
CORR_ATOL, THRESHOLDED_ATOL = 0.01, 0.045


class _Kill(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(MASTER_PORT=str(port), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
           "-m", "robustfusion", "train", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _numbers(final: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for k, v in final.items():
        if isinstance(v, dict):
            flat.update(_numbers(v, f"{prefix}{k}/"))
        elif isinstance(v, list):
            flat.update({f"{prefix}{k}[{i}]": float(x) for i, x in enumerate(v)})
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            flat[prefix + k] = float(v)
    return flat


def _metric_tolerance(key: str) -> dict[str, float]:
    """``pytest.approx`` tolerances of one evaluation metric computed after the fits (see FINAL)."""
    name = key.rsplit("/", 1)[-1]
    if name == "Corr":
        return {"abs": CORR_ATOL, "rel": 0.0}
    if "acc" in name or "F1" in name:
        return {"abs": THRESHOLDED_ATOL, "rel": 0.0}
    return {"rel": 1e-4, "abs": ATOL}


def _assert_same_metrics(got: dict[str, float], want: dict[str, float], what: str) -> None:
    assert set(got) == set(want), what
    for k, v in want.items():
        assert got[k] == pytest.approx(v, **_metric_tolerance(k)), f"{what} {k}"


def _assert_same_run(single: Path, other: Path) -> None:
    a, b = (json.loads((d / "final.json").read_text()) for d in (single, other))
    assert (a["selected_epoch"], a["epochs_run"]) == (b["selected_epoch"], b["epochs_run"])
    # TRAINED: the selected epoch's parameters (saved before any fit) and the selection value
    best_a, best_b = (load_file(d / "checkpoints" / "best.safetensors") for d in (single, other))
    assert set(best_b) == set(best_a)
    for k, v in best_a.items():
        torch.testing.assert_close(best_b[k], v, rtol=RTOL, atol=ATOL, msg=lambda m, k=k: f"{k}: {m}")
    assert b["best_value"] == pytest.approx(a["best_value"], rel=RTOL)
    # FIT: objective values as TRAINED, fitted values within their fits' resolution
    na, nb = _numbers({k: a[k] for k in ("calibration", "readout") if k in a}), \
        _numbers({k: b[k] for k in ("calibration", "readout") if k in b})
    assert set(nb) == set(na)
    for k, v in na.items():
        if k.rsplit("/", 1)[-1].startswith("loss_"):
            assert nb[k] == pytest.approx(v, rel=RTOL, abs=ATOL), k
        else:
            assert nb[k] == pytest.approx(v, rel=0.0, abs=FIT_ATOL[k.split("/")[-1].split("[")[0]]), k
    # FINAL: the metrics after the fits
    for split in ("valid", "test"):
        _assert_same_metrics(_numbers(b[split]), _numbers(a[split]), split)
    # every epoch's line: losses as TRAINED; the validation metrics (before any fit) as FINAL, since Corr
    # and the thresholds amplify rounding the same way whether or not a fit came first
    ra, rb = read_metrics(single / "metrics.jsonl"), read_metrics(other / "metrics.jsonl")
    assert [r["epoch"] for r in rb] == [r["epoch"] for r in ra] == [1, 2, 3]
    for x, y in zip(ra, rb):
        x, y = ({k: v for k, v in r.items() if k != "time_s"} for r in (x, y))
        assert set(y) == set(x)
        for k, v in x.items():
            tol = _metric_tolerance(k) if k.startswith("valid/") else {"rel": RTOL, "abs": ATOL}
            assert y[k] == pytest.approx(v, **tol), f"epoch {x['epoch']} {k}"


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """The single-process run the two-rank runs must equal."""
    return train_run(load_config(GMC_PF, TINY), run_dir=tmp_path_factory.mktemp("single") / "run").dir


# ------------------------------------------------------------------ two ranks under torchrun

@pytest.mark.slow
def test_two_ranks_under_torchrun_equal_one_process_and_only_rank_0_writes(single, tmp_path):
    proc = _torchrun([GMC_PF, *TINY, "--out", "runs"], cwd=tmp_path)
    runs = tmp_path / "runs"
    assert [p.name for p in runs.iterdir()] == ["synthetic-gmc_pf-seed0"]  # one directory, no "-2" of a rank 1
    run = runs / "synthetic-gmc_pf-seed0"
    assert proc.stdout.count(str(Path("runs") / run.name)) == 1  # only rank 0 prints
    _assert_same_run(single, run)
    # every file once: one writer appended each epoch's line once
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    assert files == sorted(str(p.relative_to(single)) for p in single.rglob("*"))
    assert "tensorboard" not in files  # off by default
    assert len((run / "train.log").read_text().splitlines()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


@pytest.mark.slow
def test_resume_under_torchrun_ends_like_the_uninterrupted_run(single, tmp_path):
    def kill(epoch):
        if epoch == 2:
            raise _Kill

    run_dir = tmp_path / "run"
    with pytest.raises(_Kill):
        train_run(load_config(GMC_PF, TINY), run_dir=run_dir, on_epoch_end=kill)
    assert not (run_dir / "final.json").exists()
    _torchrun(["--resume", str(run_dir)], cwd=tmp_path)
    _assert_same_run(single, run_dir)
    assert len((run_dir / "train.log").read_text().splitlines()) == 3


# ------------------------------------------------------------------ helpers, one process

def test_shards_cover_the_batch_in_order_with_sizes_one_apart():
    for world in (1, 2, 3, 4):
        for n in range(world, 41):
            bounds = [ddp.shard_bounds(n, r, world) for r in range(world)]
            assert [i for lo, hi in bounds for i in range(lo, hi)] == list(range(n))
            sizes = ddp.shard_sizes(n, world)
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    with pytest.raises(ValueError, match="rank"):
        ddp.shard_bounds(8, 2, 2)


def test_batches_with_fewer_samples_than_ranks_are_refused():
    ddp.check_batches(99, 32, world=2)  # last batch 3: split 1 / 2
    ddp.check_batches(97, 32, world=1)
    with pytest.raises(ValueError, match=r"train.batch_size=32 on 2 ranks: .* found a batch of 1 \(97 training"):
        ddp.check_batches(97, 32, world=2)
    with pytest.raises(ValueError, match="train.batch_size=1 on 2 ranks"):
        ddp.check_batches(10, 1, world=2)


def test_without_torchrun_every_helper_is_the_single_process_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with ddp.process_group("cpu") as world:
        assert world == 1 and not dist.is_initialized()
        assert (ddp.world_size(), ddp.rank(), ddp.is_main()) == (1, 0, True)
        ddp.barrier()
        x = torch.randn(3, 2, requires_grad=True)
        assert ddp.gather_rows(x, [3]) is x
        assert ddp.broadcast_object({"a": 1}) == {"a": 1}
        assert ddp.reduce_sum([1.5, 2.0]) == [1.5, 2.0]
    model = create_model("late_fusion", modality_dims={"a": 3, "b": 2})
    batch = _batch(4, seed=0)
    out, weight = ddp.shard_forward(model, batch, torch.device("cpu"))
    assert weight == 1.0 and torch.equal(out.loss, model(batch).loss)


def test_a_torchrun_environment_without_its_variables_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    missing = r"WORLD_SIZE=2 but \['RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'\] are not set"
    with pytest.raises(ValueError, match=missing), ddp.process_group("cpu"):
        pass
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE: expected a positive integer"):
        ddp.env_world_size()


# ------------------------------------------------------------------ gather and gradients, two processes

def _batch(n: int, seed: int) -> MultimodalBatch:
    g = torch.Generator().manual_seed(seed)
    present = torch.rand(n, 2, generator=g) > 0.3
    present[:, 0] |= ~present.any(dim=1)
    return MultimodalBatch({"a": torch.randn(n, 3, generator=g), "b": torch.randn(n, 2, generator=g)},
                           present=present, targets=torch.randn(n, 1, generator=g))


def _models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {"gmc": create_model("gmc", modality_dims={"a": 3, "b": 2}, encoder="mlp", hidden_dim=8, latent_dim=8,
                                encoder_kwargs={"layers": 0}, joint_kwargs={"dropout": 0.0,
                                                                            "encoder_kwargs": {"dropout": 0.0}},
                                unimodal_weight=1.0),
            "late_fusion": create_model("late_fusion", modality_dims={"a": 3, "b": 2}, hidden_dim=8)}


def _grads(model) -> dict[str, torch.Tensor]:
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def _two_ranks(rank: int, store: str, path: str) -> None:
    dist.init_process_group("gloo", init_method=store, rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        result = {}
        # rows 0-1 on rank 0, 2-4 on rank 1; every rank computes the loss sum(x^2) on the gathered
        # rows and back-propagates it with the weight 1 / W: each rank's own rows get the gradient 2x
        x = (torch.arange(10.0).reshape(5, 2) + 1)[slice(*ddp.shard_bounds(5, rank, 2))].requires_grad_()
        whole = ddp.gather_rows(x, ddp.shard_sizes(5, 2))
        (whole.pow(2).sum() / 2).backward()
        result["gathered"], result["x_grad"] = whole.detach(), x.grad
        mine = torch.tensor([True, False]) if rank == 0 else torch.tensor([False, True, True])
        result["present"] = ddp.gather_rows(mine, [2, 3])
        batch = _batch(5, seed=1)
        for name, model in _models().items():
            out, weight = ddp.shard_forward(model, batch, torch.device("cpu"))
            (out.loss * weight).backward()
            ddp.all_reduce_grads(model)
            result[name] = {"loss": ddp.reduce_sum([weight * float(out.loss.detach())])[0], "grads": _grads(model)}
        if rank == 0:
            torch.save(result, path)
    finally:
        dist.destroy_process_group()


def test_gathers_and_gradients_on_two_ranks_equal_one_process(tmp_path):
    out = tmp_path / "rank0.pt"
    mp.spawn(_two_ranks, args=(f"file://{tmp_path / 'store'}", str(out)), nprocs=2)
    result = torch.load(out)
    rows = torch.arange(10.0).reshape(5, 2) + 1
    assert torch.equal(result["gathered"], rows)
    assert torch.equal(result["x_grad"], 2 * rows[:2])  # the single-process d/dx of sum(x^2)
    assert result["present"].tolist() == [True, False, False, True, True]
    batch = _batch(5, seed=1)
    for name, model in _models().items():  # gmc: loss gathered in add_losses; late_fusion: weighted shard means
        loss = model(batch).loss
        loss.backward()
        assert result[name]["loss"] == pytest.approx(float(loss.detach()), rel=1e-6), name
        expected = _grads(model)
        assert set(result[name]["grads"]) == set(expected), name
        # one forward and backward: the two ranks' gradients differ from one process's only by the order
        # of a float32 sum (two partial sums joined by the all-reduce), a few ulps: rtol 1e-5
        for k, g in expected.items():
            torch.testing.assert_close(result[name]["grads"][k], g, rtol=1e-5, atol=1e-7, msg=f"{name} {k}")


def _fail_on_rank_1(rank: int, port: int, path: str) -> None:
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    try:
        with ddp.process_group("cpu", timeout=datetime.timedelta(minutes=5)):
            if rank == 1:
                raise ValueError("rank 1 fails")
            ddp.barrier()  # rank 0 waits for a rank that is gone
    except (ValueError, RuntimeError) as err:
        Path(f"{path}.{rank}").write_text(type(err).__name__)


def test_an_error_on_one_rank_ends_the_wait_of_the_others(tmp_path):
    ctx, port = mp.get_context("spawn"), _free_port()
    procs = [ctx.Process(target=_fail_on_rank_1, args=(r, port, str(tmp_path / "err"))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    # the failing rank leaves the group on its way out, so rank 0's barrier fails instead of waiting
    assert [(tmp_path / f"err.{r}").read_text() for r in range(2)] == ["RuntimeError", "ValueError"]


# ------------------------------------------------------------------ tensorboard

def test_tensorboard_writes_the_scalars_of_every_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(GMC_PF, [*TINY, "train.epochs=2", "train.tensorboard=true", "train.calibrate_fusion=false",
                               "train.calibrate_subsets=false"])
    run = train_run(cfg, run_dir=tmp_path / "run")
    assert list((run.dir / "tensorboard").glob("events.out.tfevents.*"))
    events = EventAccumulator(str(run.dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/contrastive", "lr", "valid/MAE", "valid/subset_mean/MAE"} <= tags
    rows = read_metrics(run.dir / "metrics.jsonl")
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2]
    assert [e.value for e in loss] == pytest.approx([r["train/loss"] for r in rows], rel=1e-6)


def test_tensorboard_off_by_default_and_a_missing_package_is_refused_before_training(tmp_path, monkeypatch):
    assert load_config(GMC_PF).train.tensorboard is False
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    cfg = load_config(GMC_PF, [*TINY, "train.tensorboard=true"])
    with pytest.raises(ValueError, match=r'train.tensorboard=true needs the tensorboard package.*'
                                         r'pip install "robustfusion\[tensorboard\]"'):
        train_run(cfg, out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
