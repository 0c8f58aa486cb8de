"""The ``aebench`` command (DESIGN §5). User errors: one paragraph, exit code 2."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from aebench import options
from aebench.errors import AebenchError, StopSignal, describe_os_error, os_error_exit_code
from aebench.options import DEVICES

EPILOG = """\
examples:
  aebench plugins                      list every installed component and its params
  aebench validate exp.toml            check a spec without running it
  aebench run exp.toml --out runs/exp  run it; results in runs/exp/results.nc
  aebench demo                         joint vs layer-wise DAE on MNIST, with a plot
exit codes: 0 all runs done, 1 some runs failed, 2 bad input (nothing written)
"""


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"aebench: warning: {message}", file=sys.stderr)


#: signals that stop ``aebench`` like Ctrl-C (checkpoint, runs ``interrupted``, the --resume hint);
#: the exit code is 128 + the signal's number, as a shell reports a process killed by it
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop(signum: int, frame: object) -> None:
    for sig in STOP_SIGNALS:  # once: a second signal must not interrupt the checkpointing
        signal.signal(sig, signal.SIG_IGN)
    raise StopSignal(signum)


def main(argv: list[str] | None = None) -> int:
    # The command writes its figures to files: no window toolkit (a library leaves the backend to
    # its caller, so the command, the caller here, chooses); a user's MPLBACKEND wins.
    os.environ.setdefault("MPLBACKEND", "Agg")
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP, at any moment
        signum = exc.signum if isinstance(exc, StopSignal) else signal.SIGINT
        what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        print(
            f"aebench: {what}; the finished runs are kept. Continue with: aebench run SPEC --out DIR --resume",
            file=sys.stderr,
        )
        return 130 if signum == signal.SIGINT else 128 + signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Parser(argparse.ArgumentParser):
    """argparse, with the close matches of a mistyped choice: ``aebench rn`` -> "did you mean 'run'?"."""

    def error(self, message: str) -> None:  # type: ignore[override]
        found = re.search(r"invalid choice: '?([^'\s]*)'? \(choose from (.*)\)", message)
        if found:
            choices = [c.strip().strip("'\"") for c in found.group(2).split(",")]
            close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
        super().error(message)


def _main(argv: list[str] | None) -> int:
    warnings.showwarning = _show_warning  # one line per warning, no source excerpt
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (exit 2) or --help (0), already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AebenchError as exc:
        print(f"aebench: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except BrokenPipeError:  # `aebench plugins | head`
        sys.stderr.close()
        return 0
    except OSError as exc:  # a file-system error in any command: one line naming the path, no traceback
        print(f"aebench: error: {describe_os_error(exc)}", file=sys.stderr)
        return os_error_exit_code(exc)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="aebench",
        description="Train and compare deep autoencoders: joint vs layer-wise, corruptions, regularizers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    s = sub.add_parser("plugins", help="list installed plug-ins by kind, with their params")
    s.add_argument("--json", action="store_true", help="machine-readable output (params as JSON schema)")
    s.set_defaults(func=cmd_plugins)

    s = sub.add_parser("validate", help="check a spec: exit 0, or 2 with the field-level message")
    s.add_argument("spec", help="experiment spec (TOML)")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("run", help="run a spec (all sweep points and seeds) into an output folder")
    s.add_argument("spec", help="experiment spec (TOML)")
    s.add_argument("--out", required=True, help="output folder (runs/<id>/ and results.nc)")
    _add_executor_flags(s)
    s.add_argument(
        "--device", default="auto", type=options.device, help="auto (CUDA if any), cpu, cuda (every GPU), cuda:K"
    )
    s.add_argument(
        "--checkpoints", default=None, metavar="URL", help="fsspec store for resumable checkpoints (default: --out)"
    )
    s.add_argument(
        "--resume", action="store_true", help="skip finished runs, continue the others from their checkpoints"
    )
    s.add_argument(
        "--force", action="store_true", help="write into an existing folder that holds files aebench did not write"
    )
    s.add_argument(
        "--ensemble",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train runs that share shapes as one batched model (overrides the spec's ensemble key)",
    )
    s.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="each training step under torch.compile (CUDA graphs on CUDA; overrides the spec's compile key)",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("data", help="list, generate (cache) or download data sets")
    dsub = s.add_subparsers(title="data commands", metavar="ACTION")
    d = dsub.add_parser("list", help="every data set: sizes, cached or not, checksum")
    d.set_defaults(func=cmd_data_list)
    d = dsub.add_parser("make", help="generate a variation set into the cache ($AEBENCH_DATA)")
    d.add_argument("name")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_data_make)
    d = dsub.add_parser("download", help="download a set's upstream files, checksummed, with mirror fall-back")
    d.add_argument("name")
    d.add_argument("--mirror", action="append", default=[], help="a mirror URL tried first (repeatable; file:// works)")
    d.add_argument("--dest", default=None, help="target folder (default: $AEBENCH_DATA/NAME)")
    d.set_defaults(func=cmd_data_download)

    s = sub.add_parser("report", help="write DIR/report.html and DIR/report.md from DIR/results.nc")
    s.add_argument("dir", help="a results folder (holding results.nc)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("ls", help="list the launches (results folders) under a folder: runs done/failed, sweep, tags")
    s.add_argument("root", nargs="?", default=".", help="where to look (default: the current folder)")
    s.add_argument("--tag", action="append", default=[], metavar="TAG", help="only launches with this tag (repeatable)")
    s.add_argument("--json", action="store_true", help="machine-readable output: one object per launch")
    s.set_defaults(func=cmd_ls)

    s = sub.add_parser("tag", help="show or change a launch's tags and note (kept in DIR/notes.json)")
    s.add_argument("dir", help="a results folder")
    s.add_argument("tags", nargs="*", metavar="TAG", help="tags to add")
    s.add_argument("--remove", "-r", action="append", default=[], metavar="TAG", help="a tag to remove (repeatable)")
    s.add_argument("--note", "-m", default=None, help="the launch's note (replaces the old one; '' clears it)")
    s.set_defaults(func=cmd_tag)

    s = sub.add_parser("demo", help="a real experiment on the embedded MNIST: joint vs layer-wise DAE-2")
    s.add_argument("--out", default="demo-results", help="output folder (default: demo-results)")
    s.add_argument("--quick", action="store_true", help="a tiny version (seconds), for a smoke test")
    s.add_argument("--device", default="auto", choices=DEVICES)
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_demo)
    return p


def executor_flags(reg) -> dict[str, dict[str, Any]]:
    """Each executor option (a field of an executor's ``Params``) as one ``aebench run`` flag:
    its argparse settings, the executors that take it and their descriptions."""
    flags: dict[str, dict[str, Any]] = {}
    for name in reg.names("executor"):
        for field, info in reg.get("executor", name).Params.model_fields.items():
            flag = flags.setdefault(field, {"annotation": info.annotation, "executors": [], "help": []})
            flag["executors"].append(name)
            if info.description and info.description not in flag["help"]:
                flag["help"].append(info.description)
    return flags


def _flag_type(annotation: Any) -> Any:
    """The argparse type of a field: its one non-None type (int, float, str), or a boolean flag."""
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    kind = args[0] if len(args) == 1 else str
    return kind if kind in (int, float, str, bool) else str


def _add_executor_flags(s: argparse.ArgumentParser) -> None:
    """``--executor`` and every option of every installed executor (from their ``Params``: no
    list here to keep in step; a plug-in executor's options appear as flags of their own)."""
    from aebench.plugins import registry

    reg = registry()
    names = reg.names("executor")
    s.add_argument("--executor", default="local", choices=names, help=f"where runs train: {', '.join(names)}")
    for field, flag in executor_flags(reg).items():
        kind = _flag_type(flag["annotation"])
        text = "; ".join(flag["help"]) + f" [{', '.join(flag['executors'])}]"
        dest = f"executor_option_{field}"
        if kind is bool:
            s.add_argument(f"--{field.replace('_', '-')}", dest=dest, action=argparse.BooleanOptionalAction, help=text)
        else:
            flag_name = f"--{field.replace('_', '-')}"
            s.add_argument(flag_name, dest=dest, type=kind, default=None, metavar=field.upper(), help=text)


def executor_table(args: argparse.Namespace) -> dict[str, Any]:
    """``{"name": --executor, **the executor flags given}`` for :func:`aebench.run`."""
    given = {k.removeprefix("executor_option_"): v for k, v in vars(args).items() if k.startswith("executor_option_")}
    return {"name": args.executor, **{k: v for k, v in given.items() if v is not None}}


def cmd_plugins(args: argparse.Namespace) -> int:
    from aebench.plugins import registry

    reg = registry()
    if args.json:
        print(json.dumps(reg.as_dict(), indent=2))
        return 0
    for kind in reg.kinds():
        print(f"{kind}:")
        for name in reg.names(kind):
            e = reg.entry(kind, name)
            origin = "" if e.dist == "aebench" else f"  [{e.dist}]"
            print(f"  {name:<20} {e.summary}{origin}")
            for field, info in e.cls.Params.model_fields.items():
                default = info.get_default(call_default_factory=True)
                print(f"      {field} = {default!r}: {info.description or ''}")
    for (kind, name), entries in reg.conflicts.items():
        print(f"CONFLICT {kind} {name!r}: provided by {' and '.join(repr(e.dist) for e in entries)}")
    for b in reg.broken:
        print(f"BROKEN plug-in {b.plugin!r} from {b.dist!r}: {b.error}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from aebench.spec import Spec

    spec = Spec.from_toml(args.spec)
    n = len(spec.runs)
    dims = ", ".join(spec.sweep_dims()) or "none"
    print(
        f"{args.spec}: valid; {n} run{'s' if n != 1 else ''} (sweep axes: {dims}; seeds: {spec.raw.get('seeds', [0])})."
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import aebench
    from aebench.execution import statuses

    ds = aebench.run(
        args.spec,
        out=args.out,
        executor=executor_table(args),
        device=args.device,
        resume=args.resume,
        progress=not args.quiet,
        ensemble=args.ensemble,
        force=args.force,
        compile=args.compile,
        checkpoints=args.checkpoints,
    )
    from aebench.report import summary

    lines = summary(ds)
    if lines:
        print("\n".join(["", *lines, ""]))
    return _report_status(ds, Path(args.out), statuses(ds))


def _report_status(ds, out: Path, status: list[str]) -> int:
    failed = [s for s in status if s != "done"]
    print(f"{len(status) - len(failed)} of {len(status)} runs done; results in {out / 'results.nc'}")
    print(f"tables and figures: aebench report {_shell_path(out)}")
    if failed:
        print(f"{len(failed)} run(s) did not finish: see status.json in {out / 'runs'}", file=sys.stderr)
        return 1
    return 0


def _shell_path(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def cmd_data_list(args: argparse.Namespace) -> int:
    from aebench.plugins import registry

    reg = registry()
    print(f"{'name':<18} {'train':>7} {'valid':>7} {'test':>7}  {'cached':<9} checksum")
    for name in reg.names("dataset"):
        info = reg.get("dataset", name)().info()
        sizes = info["sizes"] or ("?", "?", "?")
        print(f"{name:<18} {sizes[0]:>7} {sizes[1]:>7} {sizes[2]:>7}  {info['cached']:<9} {info['checksum'][:16]}")
    return 0


def _variation(name: str):
    from aebench.builtin.datasets import Variation
    from aebench.errors import DataError
    from aebench.plugins import registry

    cls = registry().get("dataset", name)
    if not issubclass(cls, Variation):
        raise DataError(f"{name!r} is not a generated data set (it needs no `make`).")
    return cls


def cmd_data_make(args: argparse.Namespace) -> int:
    from aebench.builtin.datasets import make_variation
    from aebench.data.cache import paths

    _variation(args.name)
    _, digest, cached = make_variation(args.name, args.seed, progress=not args.quiet)
    where = paths(args.name, args.seed)[0]
    print(f"{args.name}: {'cache hit' if cached else 'generated'} {where} (sha256 {digest[:16]}…)")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from aebench.data.cache import usable_home
    from aebench.data.download import download

    dest = Path(args.dest) if args.dest else usable_home() / args.name
    got = download(args.name, dest, args.mirror)
    for fname, digest in got.items():
        print(f"{dest / fname}  sha256 {digest[:16]}…")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from aebench.outdir import check_report_files
    from aebench.report import paper_sections, summary, write_report
    from aebench.results import load_results

    check_report_files(Path(args.dir))  # report_files/ as a link, a figure as a pipe: refused, not followed
    html_path, md_path = write_report(args.dir)
    ds = load_results(args.dir)
    print("\n".join(summary(ds)))  # the run's summary again: the same ± and words as the report
    for section in paper_sections(ds):
        print("\n" + "\n".join(section.text()))
    print(f"report: {html_path} and {md_path}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from aebench.catalogue import launches, table

    found = launches(args.root, tags=args.tag)
    if args.json:
        print(json.dumps([x.to_dict() for x in found], indent=2))
        return 0
    if not found:
        print(f"no launches under {args.root}" + (f" tagged {', '.join(args.tag)}" if args.tag else "") + ".")
        return 0
    print("\n".join(table(found, args.root)))
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from aebench.catalogue import notes, tag

    if args.tags or args.remove or args.note is not None:
        now = tag(args.dir, add=args.tags, remove=args.remove, note=args.note)
    else:
        from aebench.catalogue import require_launch

        require_launch(Path(args.dir))
        now = notes(args.dir)
    print(f"{args.dir}: tags {', '.join(now.tags) or '(none)'}; note: {now.note or '(none)'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from aebench.demo import FIGURE, describe, final_table, run_demo
    from aebench.execution import statuses

    print(describe(args.quick))
    ds = run_demo(args.out, quick=args.quick, progress=not args.quiet, device=args.device)
    print(final_table(ds))
    print(f"figure: {Path(args.out) / FIGURE}")
    return _report_status(ds, Path(args.out), statuses(ds))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
