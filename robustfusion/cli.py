"""The ``robustfusion`` command: train, evaluate, report, reproduce, list, data check."""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

_EXAMPLES = {
    "train": "example:\n  robustfusion train configs/synthetic/gmc.yaml train.epochs=5 --out runs\n"
             "  robustfusion train configs/mosi_utterance/gmc_pf.yaml data.path=../shared/data/mosi-bclstm\n"
             "  robustfusion train --resume runs/synthetic-gmc-seed0\n"
             "  torchrun --nproc-per-node 2 -m robustfusion train configs/synthetic/gmc.yaml  # DDP, global batch",
    "evaluate": "example:\n  robustfusion evaluate runs/synthetic-gmc-seed0\n"
                "  robustfusion evaluate runs/mosi_mult-gmc-seed0 data.path=/data/mosi_data_noalign.pkl data.split=valid",
    "report": "example:\n  robustfusion report runs/ --out results/",
    "reproduce": "example:\n  robustfusion reproduce            # embedded default: synthetic benchmark, 3 seeds\n"
                 "  robustfusion reproduce --quick --out /tmp/rf-quick\n"
                 "  robustfusion reproduce --jobs 2          # two runs at a time, same robustness.csv\n"
                 "  robustfusion reproduce --launcher ray --ray-address auto --cpus-per-job 2\n"
                 "  robustfusion reproduce --launcher submitit --slurm-partition cpu --slurm-time 2:00:00\n"
                 "  robustfusion reproduce mosi_utterance --data ../shared/data/mosi-bclstm\n"
                 "  robustfusion reproduce iemocap_utterance --data ../shared/data/iemocap-ta",
    "list": "example:\n  robustfusion list",
    "data": "example:\n  robustfusion data check my_features/   # train.npz, valid.npz, test.npz in the npz format\n"
            "  robustfusion train configs/npz/gmc_pf.yaml data.path=my_features/",
}

_RESUME_HELP = ("continue a killed run from its last checkpoint, with the config saved in RUN_DIR/config.yaml; "
                "a CONFIG file or key=value overrides together with --resume are refused (a resumed run must "
                "end exactly like the uninterrupted one: start a new run to change settings)")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("robustfusion")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"


def check_writable(path: str | Path, what: str) -> None:
    """Fail before any work when ``path`` (a directory to be created or written into) cannot be
    written: the nearest existing ancestor must be a directory in which a file can be created."""
    path = Path(path)
    if path.is_symlink() and not path.exists():  # a loop or a link to nothing: mkdir would say "File exists"
        raise ValueError(f"{what} {path}: expected a directory, found a symlink that leads nowhere "
                         f"(a symlink loop or a missing target)")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"{what} {path}: {probe} exists and is not a directory")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise ValueError(f"{what} {path}: cannot write into {probe} ({err.strerror or err})") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robustfusion", description="Multimodal models that keep working when "
                                "modalities go missing: train, evaluate under modality dropping, report.")
    p.add_argument("--version", action="version", version=f"robustfusion {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    t = sub.add_parser("train", help="train one run from a YAML config", epilog=_EXAMPLES["train"], formatter_class=fmt)
    t.add_argument("config", nargs="?", help="YAML config (configs/<dataset>/<method>.yaml)")
    t.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=5 data.path=...")
    t.add_argument("--out", default="runs", help="parent directory of the run directory (default: runs)")
    t.add_argument("--resume", metavar="RUN_DIR", help=_RESUME_HELP)

    e = sub.add_parser("evaluate", help="robustness evaluation of a trained run", epilog=_EXAMPLES["evaluate"],
                       formatter_class=fmt)
    e.add_argument("run_dir")
    e.add_argument("overrides", nargs="*", help="key=value overrides (data.path, data.split, eval.*)")
    e.add_argument("--oracle", action="store_true", help="add the Bayes-optimal oracle row (synthetic data only)")
    e.add_argument("--out", default=None, metavar="DIR",
                   help="write robustness.csv, tables and plots here (default: RUN_DIR/eval/<split>)")

    r = sub.add_parser("report", help="tables and plots from the results of many runs", epilog=_EXAMPLES["report"],
                       formatter_class=fmt)
    r.add_argument("dirs", nargs="+", help="run directories or folders holding robustness.csv files")
    r.add_argument("--out", default="report", help="output directory (default: report)")

    rp = sub.add_parser("reproduce", help="run a named experiment grid end to end", epilog=_EXAMPLES["reproduce"],
                        formatter_class=fmt)
    rp.add_argument("name", nargs="?", default=None, help="grid name (default: the synthetic benchmark)")
    rp.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    rp.add_argument("--quick", action="store_true",
                    help="a smoke test, not a result: the small version of the grid (1 seed, a few methods, short "
                    "training), into results/<grid>-quick")
    rp.add_argument("--data", default=None, metavar="DIR",
                    help="real-data grids: the npz directory; tables on DIR/test.npz when present, else "
                    "cross-fitted over the groups of DIR/valid.npz (see README, 'Real data')")
    rp.add_argument("--folds", type=int, default=2, metavar="K",
                    help="with --data and no test.npz: folds of the validation groups (default: 2)")
    rp.add_argument("--jobs", type=int, default=None, metavar="N",
                    help="train at most N runs at a time; local: a process pool, each with cores/N torch threads "
                    "(default: 1, in this process); ray: default as many as the cluster schedules; submitit: "
                    "the SLURM array's parallelism. robustness.csv is byte-identical whatever the launcher")
    lg = rp.add_argument_group("launchers", "where the runs train; finished runs are reused, and the reference "
                               "rows and tables are made in this process")
    lg.add_argument("--launcher", choices=("local", "ray", "submitit"), default="local",
                    help="local (default): this machine; ray: one Ray task per run (pip install "
                    "'robustfusion[ray]'); submitit: one SLURM array task per run (pip install "
                    "'robustfusion[submitit]'), logs under OUT/submitit/")
    lg.add_argument("--cpus-per-job", type=int, default=None, metavar="C",
                    help="ray, submitit: CPUs of each run, and its torch thread count (default: 1)")
    lg.add_argument("--gpus-per-job", type=float, default=None, metavar="G",
                    help="ray, submitit: GPUs of each run (default: ray 1 when this machine has CUDA, else 0; "
                    "a fraction shares a GPU on ray)")
    lg.add_argument("--ray-address", default=None, metavar="ADDRESS",
                    help="ray: the cluster to join (ray.init(address=...); 'auto': the one `ray start` runs "
                    "here; default: $RAY_ADDRESS, else a Ray started for this grid with the machine's cores, "
                    "or N x C with --jobs N)")
    lg.add_argument("--submitit-cluster", choices=("slurm", "local"), default=None,
                    help="submitit: slurm (default) or local (submitit's local executor: the array's tasks "
                    "as processes on this machine, all at once)")
    lg.add_argument("--slurm-partition", default=None, metavar="NAME", help="submitit: the SLURM partition")
    lg.add_argument("--slurm-time", default=None, metavar="TIME",
                    help="submitit: time limit of each run, minutes or [D-]HH:MM:SS (default: 120 minutes)")
    lg.add_argument("--slurm-option", action="append", default=None, metavar="KEY=VALUE",
                    help="submitit: any other sbatch option, repeatable (account=abc, qos=high, mem=16G)")
    rp.add_argument("--out", default=None, help="output directory (default: results/<grid>, results/<grid>-quick "
                    "with --quick; a folder holding another grid's results is refused); prints the headline "
                    "table (the task's primary metric per modality subset) and the path of the full table.md")

    sub.add_parser("list", help="registered models, encoders, fusion layers, datasets, protocols, grids",
                   epilog=_EXAMPLES["list"], formatter_class=fmt)

    d = sub.add_parser("data", help="your own features: check a folder in the npz format", epilog=_EXAMPLES["data"],
                       formatter_class=fmt)
    dsub = d.add_subparsers(dest="data_command", required=True)
    dc = dsub.add_parser("check", help="validate DIR/{train,valid,test}.npz (robustfusion.data.npz_format) and print "
                         "a summary; a one-line error names the file, the key, what was expected and what was found")
    dc.add_argument("dir", help="the folder holding train.npz, valid.npz and test.npz")
    return p


def _cmd_train(args) -> int:
    from robustfusion.runner import distributed as ddp
    from robustfusion.runner.api import resume_run, train_run
    from robustfusion.runner.config import load_config
    from robustfusion.runner.rundir import read_run_config

    if args.config is not None and "=" in args.config:
        args.overrides.insert(0, args.config)
        args.config = None
    if args.resume:
        if args.config is not None:
            raise ValueError(f"--resume {args.resume} continues with the config saved in the run directory; "
                             f"found a config file too ({args.config}): drop one of them")
        if args.overrides:
            raise ValueError(f"--resume {args.resume} continues with the config saved in the run directory; "
                             f"overrides {args.overrides} are not applied to a resumed run: start a new run instead")
        check_writable(args.resume, "--resume")
        device = read_run_config(args.resume).train.device
    else:
        if args.config is None:
            raise ValueError("train: expected a config file (e.g. configs/synthetic/gmc.yaml) or --resume RUN_DIR")
        cfg = load_config(args.config, args.overrides)
        check_writable(args.out, "--out")
        device = cfg.train.device
    with ddp.process_group(device):  # under torchrun: the group from its environment; else nothing
        run = resume_run(args.resume) if args.resume else train_run(cfg, args.out)
        if not ddp.is_main():
            return 0
    for split in ("valid", "test"):
        if split in run.final:
            print(f"{split}: " + ", ".join(f"{k}={v:.4f}" for k, v in run.final[split].items()))
    print(run.dir)
    return 0


def _cmd_evaluate(args) -> int:
    from robustfusion.reporting.headline import headline_text
    from robustfusion.runner.api import evaluate_run

    if not Path(args.run_dir, "config.yaml").is_file():
        raise FileNotFoundError(f"{args.run_dir} is not a run directory: no config.yaml (expected the directory "
                                "printed by `robustfusion train`)")
    kwargs = {}
    if args.out is not None:
        if "out" not in inspect.signature(evaluate_run).parameters:
            raise ValueError("evaluate --out: this version of robustfusion.runner.api.evaluate_run has no `out`")
        check_writable(args.out, "--out")
        kwargs["out"] = args.out
    else:
        check_writable(Path(args.run_dir) / "eval", "run directory")
    out, rows = evaluate_run(args.run_dir, args.overrides, oracle=args.oracle, **kwargs)
    print(headline_text(rows, str(out / "table.md")))  # a few lines; the 200-line table.md stays in the file
    print(out / "robustness.csv")
    return 0


def _cmd_report(args) -> int:
    from robustfusion.runner.report import report_dirs

    check_writable(args.out, "--out")
    result = report_dirs(args.dirs, args.out)
    print(result.get("markdown", ""))
    print(args.out)
    return 0


def _cmd_reproduce(args) -> int:
    from robustfusion.runner.launchers import make_launcher
    from robustfusion.runner.reproduce import reproduce

    if args.name is not None and "=" in args.name:  # `reproduce key=value ...`: no grid name given
        args.overrides.insert(0, args.name)
        args.name = None
    launcher = make_launcher(args.launcher, jobs=args.jobs, cpus_per_job=args.cpus_per_job,
                             gpus_per_job=args.gpus_per_job, ray_address=args.ray_address,
                             submitit_cluster=args.submitit_cluster, slurm_partition=args.slurm_partition,
                             slurm_time=args.slurm_time, slurm_options=args.slurm_option or ())
    check_writable(args.out or "results", "--out")
    if args.data is not None:
        from robustfusion.runner.data_grids import reproduce_on_data

        result = reproduce_on_data(args.name or "synthetic", args.data, quick=args.quick, out=args.out,
                                   overrides=args.overrides, launcher=launcher, folds=args.folds)
    else:
        result = reproduce(args.name, quick=args.quick, out=args.out, overrides=args.overrides, launcher=launcher)
    if args.quick:
        print(quick_notice(result.get("rows", ())))
    from robustfusion.reporting.headline import headline_table

    print(headline_table(result["markdown"], result.get("rows", ())))
    print(f"full tables (every metric, both sweeps, AUILC): {Path(result['out']) / 'table.md'}")
    print(result["out"])
    return 0


def quick_notice(rows=()) -> str:
    """The line ``reproduce --quick`` prints above its table: it is a smoke test, not a result."""
    seeds = sorted({r["seed"] for r in rows}, key=str)
    n = f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}" if seeds else "few seeds"
    return (f"SMOKE TEST (--quick: {n}, few methods, short training): these numbers show that the pipeline runs, "
            "they are not results; run without --quick for the table")


def _cmd_data(args) -> int:
    from robustfusion.data.npz_format import check_npz_folder, format_summary

    print(format_summary(check_npz_folder(args.dir)))  # only `check` exists (argparse refuses anything else)
    return 0


def _cmd_list(_args) -> int:
    from robustfusion.data import list_datasets
    from robustfusion.encoders import JOINT_ENCODERS, list_encoders
    from robustfusion.fusion import list_fusions
    from robustfusion.models import list_models
    from robustfusion.protocols import protocol_names
    from robustfusion.runner.presets import GRIDS

    for title, names in [("models", list_models()), ("encoders", list_encoders()),
                         ("joint encoders", JOINT_ENCODERS.names()), ("fusion layers", list_fusions()),
                         ("datasets", list_datasets()), ("protocols", list(protocol_names())), ("grids", GRIDS.names())]:
        print(f"{title}: {', '.join(names)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may follow options (`reproduce --quick data.path=...`)
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = list(args.overrides) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler = {"train": _cmd_train, "evaluate": _cmd_evaluate, "report": _cmd_report,
               "reproduce": _cmd_reproduce, "list": _cmd_list, "data": _cmd_data}[args.command]
    try:
        return handler(args)
    except (ValueError, OSError, KeyError) as err:  # OSError: FileNotFoundError, PermissionError, disk full, ...
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"robustfusion {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
