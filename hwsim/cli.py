"""The ``hwsim`` command: a thin layer over the Python API (one module per sub-command).

Conventions every sub-command follows (helpers here, so they are the same everywhere):

- options are never abbreviated (``--epoch`` is refused, not read as ``--epochs``); a mistyped
  command or option gets a "did you mean" (``hwsim simualte``, ``--arhc``);
- every option has help text and its default shown once (:class:`HelpFormatter`);
- numeric options are range-checked by argparse types (:mod:`hwsim.commands.args`);
- an output that exists is replaced only with ``--overwrite``, and only once the new one is
  complete (:mod:`hwsim._io`);
- a reader of stdout that goes away (``hwsim inspect T | head``) ends the command quietly (exit 141, as
  SIGPIPE would); no "Broken pipe" error;
- a user error — bad input, a full, read-only or forbidden output location — is one line on
  stderr naming the file, field or flag, and exit code 2; never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import importlib.util
import os
import select
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn, TextIO

from hwsim._native import check_switches
from hwsim._version import __version__
from hwsim.commands.args import UserError

# Order = order in `hwsim --help`.
COMMANDS = ("demo", "trace", "inspect", "synth", "validate", "simulate", "compare", "sweep", "report", "experiment")


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class HelpFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` once, only when there is a default worth showing and the help does not state it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if (d is None or d is False or d == [] or d is argparse.SUPPRESS or action.option_strings == []
                or "default" in text.lower() or "%(default)" in text):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """No abbreviations, one-line errors with "did you mean", the shared formatter for sub-parsers."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("allow_abbrev", False)
        kw.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kw)

    def error(self, message: str) -> NoReturn:
        import re

        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            message = f"{message}{_did_you_mean(m.group(1), choices)}"
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # noqa: ANN401
        argv = list(sys.argv[1:] if args is None else args)
        _check_unknown_options(self, argv)
        return super().parse_known_args(argv, namespace)


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def _check_unknown_options(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Refuse an unknown ``--option`` before argparse reports a missing required one instead (``--arhc``)."""
    p = parser
    for tok in argv:
        if tok == "--":
            return
        if tok.startswith("--"):
            name = tok.split("=", 1)[0]
            if name not in p._option_string_actions:
                opts = [o for o in p._option_string_actions if o.startswith("--")]
                p.error(f"unrecognized option {name}{_did_you_mean(name, opts)}")
        elif not tok.startswith("-"):
            subs = _subparsers(p)
            if tok in subs:
                p = subs[tok]


# ----------------------------------------------------------------------------- parser and main


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="hwsim",
        description="Cycles and energy of sparse-aware DNN training accelerators, measured on real "
        "dithered-backprop gradients. Capture a trace, simulate it on YAML architectures, sweep and report.",
        epilog="Run 'hwsim demo' for the whole pipeline on the embedded dataset; 'hwsim COMMAND --help' for details. "
        "Outputs that exist are replaced only with --overwrite. Environment: HWSIM_QUANT_PATH=auto|numpy|torch "
        "(capture's NSD on CPU: the compiled kernel where built, else numpy / never the compiled kernel / torch's "
        "path) and HWSIM_SIM_KERNEL=auto|numpy (the simulator's bank-conflict model: compiled where built / numpy); "
        "auto is the default; the compiled and numpy paths give the same levels, cycles and energy.",
    )
    parser.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        modname = f"hwsim.commands.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


_OS_HINTS = {
    errno.ENOSPC: "no space left on the device; free space or choose another output location",
    errno.EDQUOT: "disk quota exceeded; free space or choose another output location",
    errno.EROFS: "read-only file system; choose a writable output location",
    errno.EACCES: "permission denied; choose a location you can write to",
    errno.EPERM: "operation not permitted; choose a location you can write to",
    errno.ENOTDIR: "a component of the path is a file, not a directory",
    errno.EISDIR: "is a directory; give a file path",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files",
}


def describe_os_error(e: OSError) -> str:
    """One line for an OSError: the path, what happened, what to do."""
    hint = _OS_HINTS.get(e.errno or -1, e.strerror or str(e))
    where = e.filename if e.filename is not None else None
    return f"{where}: {hint}" if where else f"{hint} ({e.strerror or e})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help/--version (0) or a usage error already printed as one line (2)
        return e.code if isinstance(e.code, int) else 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        check_switches()  # HWSIM_QUANT_PATH / HWSIM_SIM_KERNEL: a bad value fails here, not in a worker minutes later
        with one_line_warnings(args.command):
            code = int(args._run(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, not as a traceback at interpreter exit
        return code
    except BrokenPipeError as e:
        if not _stdout_closed():  # another pipe (a worker's, a socket): an error like any OSError
            print(f"hwsim {args.command}: error: {describe_os_error(e)}", file=sys.stderr)
            return 2
        # `hwsim inspect T | head`: the reader has what it wanted; stop quietly, as a Unix tool killed by
        # SIGPIPE does (exit 128 + 13), and point stdout at /dev/null so the exit flush cannot fail again.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
    except (UserError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, ValueError) as e:
        # Validation errors (TraceError, ArchError, ...) are ValueErrors whose message names file and field.
        print(f"hwsim {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # full, read-only or forbidden output locations, ...
        print(f"hwsim {args.command}: error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"hwsim {args.command}: error: out of memory; the input is larger than this machine can hold",
              file=sys.stderr)
        return 2


def _stdout_closed() -> bool:
    """Has the reader of stdout gone away (a pipe whose read end is closed)?"""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poll.poll(0))
    except AttributeError:  # no poll() (Windows): a broken pipe there is most likely stdout's
        return True
    except (OSError, ValueError):  # stdout is no file (replaced in-process): the broken pipe is another one
        return False


@contextlib.contextmanager
def one_line_warnings(command: str) -> Iterator[None]:
    """While a command runs, print each warning as one line ``hwsim <command>: warning: …`` on stderr (no Python
    source line, no file:line of hwsim's code); a category other than ``UserWarning`` is named. Restored after."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None,
             line: str | None = None) -> None:
        text = " ".join(str(message).split())
        if category is not UserWarning:
            text = f"{category.__name__}: {text}"
        out = file if file is not None else sys.stderr
        try:
            out.write(f"hwsim {command}: warning: {text}\n")
        except OSError:  # stderr gone (closed pipe): a warning is not worth a crash
            pass

    saved = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = saved


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None:
        if isinstance(e, (FileNotFoundError, FileExistsError)):
            return f"{e.filename}: {e.strerror}"
        return describe_os_error(e)
    return " ".join(str(e).split())


if __name__ == "__main__":
    sys.exit(main())
