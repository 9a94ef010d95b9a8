"""``reproduce --launcher {local,ray,submitit}``: the same ``robustness.csv`` whatever trains the
runs (submitit's local executor, a local Ray with 2 CPUs), finished runs reused without the
engine, one-line errors for a missing extra or a flag of another launcher, and a core that never
imports an engine."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from robustfusion.cli import main
from robustfusion.runner.launchers import LAUNCHERS, LauncherInfo, make_launcher
from robustfusion.runner.launchers.local import LocalLauncher
from robustfusion.runner.launchers.raytasks import RayLauncher
from robustfusion.runner.launchers.slurm import SubmititLauncher, slurm_minutes

slurm_mod = importlib.import_module("robustfusion.runner.launchers.slurm")
QUICK_RUNS = ("gmc", "gmc_pf", "late_fusion")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # sys.modules[module] is None: blocked
        return False


needs_submitit = pytest.mark.skipif(not _installed("submitit"),
                                    reason='submitit is not installed (pip install "robustfusion[submitit]")')
needs_ray = pytest.mark.skipif(not _installed("ray"), reason='Ray is not installed (pip install "robustfusion[ray]")')


@pytest.fixture(autouse=True)
def _engine_env(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_DEDUP_LOGS", "0")  # what RayLauncher sets; restored after each test


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Path:
    """``reproduce --quick`` in this process, the reference every launcher must match byte for byte."""
    out = tmp_path_factory.mktemp("serial")
    assert main(["reproduce", "--quick", "--out", str(out)]) == 0
    return out


def _progress(err: str) -> list[str]:
    return re.findall(r"run \d/3 \(synthetic, (\w+), seed 0\)", err)


# ------------------------------------------------------------------ submitit (its local executor)

@needs_submitit
def test_submitit_local_executor_writes_the_same_csv_and_a_rerun_reuses_the_runs_without_submitit(
        serial, tmp_path, capsys, monkeypatch):
    out = tmp_path / "sub"
    assert main(["reproduce", "--quick", "--launcher", "submitit", "--submitit-cluster", "local",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "3 runs as local submitit jobs (1 CPU(s), 0 GPU(s), 120 min each)" in err
    assert sorted(_progress(err)) == sorted(QUICK_RUNS)
    assert (out / "robustness.csv").read_bytes() == (serial / "robustness.csv").read_bytes()
    # one array task per run, its epoch lines in its own log under OUT/submitit/
    logs = sorted((out / "submitit").rglob("*_log.err"))
    assert len(logs) == 3
    assert sorted(re.match(r"synthetic-(\w+)-seed0 epoch 1/3", p.read_text()).group(1) for p in logs) == sorted(QUICK_RUNS)

    def no_submission(*args, **kwargs):
        raise AssertionError("a finished run was submitted again")
    monkeypatch.setattr(SubmititLauncher, "run", no_submission)
    assert main(["reproduce", "--quick", "--launcher", "submitit", "--submitit-cluster", "local",
                 "--out", str(out)]) == 0
    assert capsys.readouterr().err.count("reused finished run") == 3
    assert (out / "robustness.csv").read_bytes() == (serial / "robustness.csv").read_bytes()


@needs_submitit
def test_submitit_slurm_script_carries_the_flags(monkeypatch, tmp_path):
    monkeypatch.setattr(slurm_mod.shutil, "which", lambda name: f"/usr/bin/{name}")
    launcher = make_launcher("submitit", jobs=4, cpus_per_job=2, gpus_per_job=1, slurm_partition="cpu",
                             slurm_time="1-2:30", slurm_options=["account=abc", "--mail-type=END"])
    slurm = launcher.executor(tmp_path)._executor
    script = slurm._make_submission_file_text("python -m job", "uid")
    for line in ("--partition=cpu", "--time=1590", "--cpus-per-task=2", "--gpus-per-node=1", "--nodes=1",
                 "--account=abc", "--mail-type=END", f"--output={tmp_path}/"):
        assert f"#SBATCH {line}" in script, line
    assert slurm.parameters["array_parallelism"] == 4  # --array=0-(N-1)%4


@pytest.mark.parametrize("text, minutes", [("90", 90), ("1:30", 2), ("2:00:00", 120), ("1-0", 1440),
                                           ("1-2:30", 1590), ("0-0:0:1", 1)])
def test_slurm_minutes_reads_slurms_time_formats(text, minutes):
    assert slurm_minutes(text) == minutes


# ------------------------------------------------------------------ ray

@pytest.mark.slow
@needs_ray
def test_ray_local_cluster_with_2_cpus_writes_the_same_csv(serial, tmp_path, capsys, monkeypatch):
    import ray
    inits = []
    real_init = ray.init

    def init(*args, **kwargs):
        inits.append(kwargs)
        return real_init(*args, **kwargs)
    monkeypatch.setattr(ray, "init", init)
    out = tmp_path / "ray"
    assert main(["reproduce", "--quick", "--launcher", "ray", "--jobs", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert inits == [{"address": "local", "num_cpus": 2, "include_dashboard": False}]
    assert not ray.is_initialized()  # the Ray started for the grid is shut down
    assert "3 runs as Ray tasks (1 CPU(s), 0 GPU(s), 1 torch thread(s) each; at most 2 at once)" in err
    assert sorted(_progress(err)) == sorted(QUICK_RUNS)
    assert len(re.findall(r"seed0 epoch \d/3", err)) == 9  # every epoch line of the workers reaches stderr
    assert (out / "robustness.csv").read_bytes() == (serial / "robustness.csv").read_bytes()


class _FakeRay(types.ModuleType):
    """Just enough of Ray's API to watch the launcher: tasks run when their result is fetched."""

    def __init__(self, gpus: float = 0):
        super().__init__("ray")
        self.gpus, self.inits, self.pending, self.cancelled, self.most = gpus, [], {}, [], 0
        self.up = False

    def is_initialized(self):
        return self.up

    def init(self, **kwargs):
        self.inits.append(kwargs)
        self.up = True

    def shutdown(self):
        self.up = False

    def cluster_resources(self):
        return {"CPU": float(self.inits[-1].get("num_cpus", 64)), "GPU": self.gpus}

    def remote(self, fn):
        fake = self

        class Task:
            def options(self, **kwargs):
                fake.options = kwargs
                return self

            def remote(self, *args):
                ref = object()
                fake.pending[ref] = (fn, args)
                fake.most = max(fake.most, len(fake.pending))
                return ref
        return Task()

    def wait(self, refs, num_returns=1):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        fn, args = self.pending.pop(ref)
        return fn(*args)

    def cancel(self, ref, force=False):
        self.cancelled.append(ref)


def _job(name, num_threads=0):
    if name == "boom":
        raise RuntimeError("boom")
    return (name, num_threads)


@pytest.mark.parametrize("jobs, most", [(1, 1), (2, 2), (None, 3)])
def test_ray_launcher_keeps_at_most_jobs_tasks_in_flight_and_passes_the_threads(monkeypatch, jobs, most):
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    got = []
    RayLauncher(jobs=jobs, cpus_per_job=2, gpus_per_job=0).run(
        _job, [("a",), ("b",), ("c",)], lambda i, r: got.append((i, r)), out=Path("."), log=lambda m: None)
    assert got == [(0, ("a", 2)), (1, ("b", 2)), (2, ("c", 2))]
    assert fake.most == most and fake.options == {"num_cpus": 2, "num_gpus": 0.0}
    assert fake.inits == [{"address": "local", "num_cpus": 2 * jobs if jobs else max(2, _cores()),
                           "include_dashboard": False}]
    assert not fake.up


def _cores():
    from robustfusion.runner.resources import available_cores

    return available_cores()


def test_ray_launcher_joins_ray_address_and_cancels_the_rest_when_a_run_fails(monkeypatch):
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    with pytest.raises(RuntimeError, match="boom"):
        RayLauncher(gpus_per_job=0).run(_job, [("boom",), ("b",), ("c",)], lambda i, r: None,
                                        out=Path("."), log=lambda m: None)
    assert fake.inits == [{"address": "10.0.0.1:6379"}]
    assert len(fake.cancelled) == 2 and not fake.up


def test_ray_launcher_refuses_gpus_a_local_ray_does_not_have(monkeypatch):
    fake = _FakeRay(gpus=0)
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(ValueError, match=r"--launcher ray: each run asks for 1 GPU\(s\), found 0 on the local Ray"):
        RayLauncher(gpus_per_job=1).run(_job, [("a",)], lambda i, r: None, out=Path("."), log=lambda m: None)
    assert not fake.up


# ------------------------------------------------------------------ errors and the engine-free core

@pytest.mark.parametrize("launcher, module, extra, what", [("ray", "ray", "ray", "Ray"),
                                                           ("submitit", "submitit", "submitit", "submitit")])
def test_a_missing_engine_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys, launcher, module, extra, what):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if it were absent
    args = ["--submitit-cluster", "local"] if launcher == "submitit" else []
    assert main(["reproduce", "--quick", "--launcher", launcher, *args, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"robustfusion reproduce: error: --launcher {launcher} needs {what}: "
                                       f'pip install "robustfusion[{extra}]"\n')
    assert not (tmp_path / "out").exists()  # refused before any work


def test_a_broken_engine_says_what_failed(monkeypatch, tmp_path, capsys):
    real = importlib.import_module

    def broken(name, *args):
        if name == "ray":  # ray is there, but one of its own imports fails
            raise ImportError("libgrpc.so: cannot open shared object file", name="grpc")
        return real(name, *args)
    monkeypatch.setattr(importlib, "import_module", broken)
    assert main(["reproduce", "--launcher", "ray", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("robustfusion reproduce: error: --launcher ray needs Ray: expected `import ray` "
                                       "to work, found ImportError: libgrpc.so: cannot open shared object file\n")


@pytest.mark.parametrize("argv, message", [
    (["--ray-address", "auto"], "--ray-address: expected with --launcher ray, found --launcher local"),
    (["--cpus-per-job", "2"], "--cpus-per-job: expected with --launcher ray or submitit, found --launcher local"),
    (["--launcher", "ray", "--slurm-partition", "cpu"],
     "--slurm-partition: expected with --launcher submitit, found --launcher ray"),
    (["--launcher", "ray", "--cpus-per-job", "0"], "--cpus-per-job 0: expected a number of CPUs >= 1"),
    (["--launcher", "ray", "--jobs", "0"], "--jobs 0: expected a number of processes >= 1"),
    (["--launcher", "submitit", "--gpus-per-job", "0.5"],
     "--gpus-per-job 0.5: expected a whole number of GPUs with --launcher submitit"),
    (["--launcher", "submitit", "--submitit-cluster", "local", "--jobs", "2"],
     "--jobs 2: expected no --jobs with --submitit-cluster local (the local executor starts every array task at once)"),
    (["--launcher", "submitit", "--slurm-time", "2h"], "--slurm-time 2h: expected minutes or [D-]HH:MM:SS"),
    (["--launcher", "submitit", "--slurm-option", "partition=cpu"],
     ("--slurm-option partition=cpu: expected an sbatch option without a flag of its own, found partition "
      "(use --slurm-partition)")),
    (["--launcher", "submitit", "--slurm-option", "account"], "--slurm-option account: expected KEY=VALUE"),
])
def test_flags_of_another_launcher_and_bad_values_are_refused(tmp_path, capsys, argv, message):
    assert main(["reproduce", "--quick", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robustfusion reproduce: error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@needs_submitit
def test_submitit_without_slurm_points_at_the_local_executor(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(slurm_mod.shutil, "which", lambda name: None)
    assert main(["reproduce", "--launcher", "submitit", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("robustfusion reproduce: error: --launcher submitit: expected SLURM (sbatch "
                                       "on PATH), found none; --submitit-cluster local runs the array on this machine\n")


def test_local_is_the_default_launcher_and_jobs_sizes_its_pool():
    assert isinstance(make_launcher(), LocalLauncher) and make_launcher().jobs == 1
    assert make_launcher("local", jobs=3).jobs == 3


def test_launchers_are_a_registry_and_a_new_entry_takes_its_own_options():
    assert LAUNCHERS.ordered() == ["local", "ray", "submitit"]
    with pytest.raises(ValueError, match="--launcher lokal: expected one of local, ray, submitit"):
        make_launcher("lokal")
    made = {}

    def build(jobs, ray_address=None):
        made.update(jobs=jobs, ray_address=ray_address)
        return LocalLauncher(jobs=jobs or 1)
    LAUNCHERS.add("mine", LauncherInfo("mine", build, options=("ray_address",)))
    try:
        assert isinstance(make_launcher("mine", jobs=2, ray_address="here"), LocalLauncher)
        assert made == {"jobs": 2, "ray_address": "here"}
        with pytest.raises(ValueError, match="--ray-address: expected with --launcher ray or mine, found --launcher local"):
            make_launcher("local", ray_address="here")
        with pytest.raises(ValueError, match="--slurm-time: expected with --launcher submitit, found --launcher mine"):
            make_launcher("mine", slurm_time="10")
    finally:
        LAUNCHERS.remove("mine")


def test_the_package_never_imports_an_engine():
    code = ("import sys, robustfusion, robustfusion.cli, robustfusion.runner.reproduce\n"
            "from robustfusion.runner.launchers import make_launcher\n"
            "make_launcher('local', jobs=2)\n"
            "import robustfusion.runner.launchers.raytasks, robustfusion.runner.launchers.slurm\n"
            "print(sorted(m for m in ('ray', 'submitit') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------ launch order

class _Recording(LocalLauncher):
    """Runs the jobs here, in the order given, as a concurrent launcher would receive them."""

    concurrent = True

    def __init__(self) -> None:
        super().__init__(jobs=1)
        self.order: list[str] = []

    def run(self, fn, jobs, on_done, *, out, log):
        for i, args in enumerate(jobs):
            self.order.append(args[0])
            on_done(i, fn(*args))


def test_a_concurrent_launcher_gets_the_longest_runs_first_and_the_csv_is_unchanged(serial, tmp_path, monkeypatch):
    reproduce_mod = importlib.import_module("robustfusion.runner.reproduce")
    estimates = {"gmc": 1.0, "gmc_pf": 5.0, "late_fusion": 9.0}
    monkeypatch.setattr(reproduce_mod, "_estimated_seconds", lambda cfg: estimates[cfg.name])
    launcher = _Recording()
    reproduce_mod.reproduce(quick=True, out=tmp_path, launcher=launcher, log=lambda message: None)
    assert launcher.order == ["late_fusion", "gmc_pf", "gmc"]
    assert (tmp_path / "robustness.csv").read_bytes() == (serial / "robustness.csv").read_bytes()


def test_the_estimate_times_a_real_step_and_leaves_the_rng_alone():
    import torch

    from robustfusion.runner.presets import GRIDS, method_config

    reproduce_mod = importlib.import_module("robustfusion.runner.reproduce")
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    cfg = method_config(GRIDS.get("synthetic"), "late_fusion", 0, quick=True)
    assert reproduce_mod._estimated_seconds(cfg) > 0
    assert torch.equal(torch.random.get_rng_state(), state)
