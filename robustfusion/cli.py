"""The ``robustfusion`` command: train, evaluate, report, reproduce, list."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

_EXAMPLES = {
    "train": "example:\n  robustfusion train configs/synthetic/gmc.yaml train.epochs=5 --out runs\n"
             "  robustfusion train configs/mosi_utterance/gmc_pf.yaml data.path=../shared/data/mosi-bclstm\n"
             "  robustfusion train --resume runs/synthetic-gmc-seed0",
    "evaluate": "example:\n  robustfusion evaluate runs/synthetic-gmc-seed0\n"
                "  robustfusion evaluate runs/mosi_mult-gmc-seed0 data.path=/data/mosi_data_noalign.pkl data.split=valid",
    "report": "example:\n  robustfusion report runs/ --out results/",
    "reproduce": "example:\n  robustfusion reproduce            # embedded default: synthetic benchmark, 3 seeds\n"
                 "  robustfusion reproduce --quick --out /tmp/rf-quick\n"
                 "  robustfusion reproduce mosi_utterance data.path=../shared/data/mosi-bclstm",
    "list": "example:\n  robustfusion list",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robustfusion", description="Multimodal models that keep working when "
                                "modalities go missing: train, evaluate under modality dropping, report.")
    sub = p.add_subparsers(dest="command", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    t = sub.add_parser("train", help="train one run from a YAML config", epilog=_EXAMPLES["train"], formatter_class=fmt)
    t.add_argument("config", nargs="?", help="YAML config (configs/<dataset>/<method>.yaml)")
    t.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=5 data.path=...")
    t.add_argument("--out", default="runs", help="parent directory of the run directory (default: runs)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its last checkpoint")

    e = sub.add_parser("evaluate", help="robustness evaluation of a trained run", epilog=_EXAMPLES["evaluate"],
                       formatter_class=fmt)
    e.add_argument("run_dir")
    e.add_argument("overrides", nargs="*", help="key=value overrides (data.path, data.split, eval.*)")
    e.add_argument("--oracle", action="store_true", help="add the Bayes-optimal oracle row (synthetic data only)")

    r = sub.add_parser("report", help="tables and plots from the results of many runs", epilog=_EXAMPLES["report"],
                       formatter_class=fmt)
    r.add_argument("dirs", nargs="+", help="run directories or folders holding robustness.csv files")
    r.add_argument("--out", default="report", help="output directory (default: report)")

    rp = sub.add_parser("reproduce", help="run a named experiment grid end to end", epilog=_EXAMPLES["reproduce"],
                        formatter_class=fmt)
    rp.add_argument("name", nargs="?", default=None, help="grid name (default: the synthetic benchmark)")
    rp.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    rp.add_argument("--quick", action="store_true", help="the small version of the grid (about a minute)")
    rp.add_argument("--out", default="results", help="output directory (default: results)")

    sub.add_parser("list", help="registered models, encoders, fusion layers, datasets, protocols, grids",
                   epilog=_EXAMPLES["list"], formatter_class=fmt)
    return p


def _cmd_train(args) -> int:
    from robustfusion.runner.api import resume_run, train_run
    from robustfusion.runner.config import load_config

    if args.resume:
        run = resume_run(args.resume)
    else:
        if args.config is None:
            raise ValueError("train: expected a config file (e.g. configs/synthetic/gmc.yaml) or --resume RUN_DIR")
        if "=" in args.config:
            args.overrides.insert(0, args.config)
            args.config = None
        cfg = load_config(args.config, args.overrides)
        run = train_run(cfg, args.out)
    for split in ("valid", "test"):
        if split in run.final:
            print(f"{split}: " + ", ".join(f"{k}={v:.4f}" for k, v in run.final[split].items()))
    print(run.dir)
    return 0


def _cmd_evaluate(args) -> int:
    from robustfusion.runner.api import evaluate_run

    out, _ = evaluate_run(args.run_dir, args.overrides, oracle=args.oracle)
    print((out / "table.md").read_text() if (out / "table.md").exists() else "")
    print(out / "robustness.csv")
    return 0


def _cmd_report(args) -> int:
    from robustfusion.runner.api import report_dirs

    result = report_dirs(args.dirs, args.out)
    print(result.get("markdown", ""))
    print(args.out)
    return 0


def _cmd_reproduce(args) -> int:
    from robustfusion.runner.reproduce import reproduce

    result = reproduce(args.name, quick=args.quick, out=args.out, overrides=args.overrides)
    print(result["markdown"])
    print(args.out)
    return 0


def _cmd_list(_args) -> int:
    from robustfusion.data import list_datasets
    from robustfusion.dropping import PROTOCOLS
    from robustfusion.encoders import JOINT_ENCODERS, list_encoders
    from robustfusion.fusion import list_fusions
    from robustfusion.models import list_models
    from robustfusion.runner.presets import GRIDS

    for title, names in [("models", list_models()), ("encoders", list_encoders()),
                         ("joint encoders", JOINT_ENCODERS.names()), ("fusion layers", list_fusions()),
                         ("datasets", list_datasets()), ("protocols", list(PROTOCOLS)), ("grids", sorted(GRIDS))]:
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
               "reproduce": _cmd_reproduce, "list": _cmd_list}[args.command]
    try:
        return handler(args)
    except (ValueError, FileNotFoundError, KeyError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"robustfusion {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
