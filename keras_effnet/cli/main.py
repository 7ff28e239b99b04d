"""The dispatcher of `effnet`: which function and flag table each command has, argv parsed
with absl into that function's arguments, the `--help` texts, and errors: the package's own
user errors (UserError, absl's UsageError) print as one line in the command line's terms and
exit 2; any other exception is a bug and keeps its traceback."""

from __future__ import annotations

import inspect
import os
import sys
import textwrap
import warnings
from typing import Any

from absl import app, flags, logging

import keras_effnet.cli
from keras_effnet.cli import export, models, quickstart, search, training, webapp
from keras_effnet.cli.options import Flag, flag_syntax, parameters
from keras_effnet.errors import UserError

_COMMANDS = {  # each command's function and flags (a help text or a Flag, for that command)
    "build": (models.build, models.BUILD_FLAGS), "profile": (models.profile, models.PROFILE_FLAGS),
    "quickstart": (quickstart.quickstart, quickstart.QUICKSTART_FLAGS),
    "train": (training.train, training.TRAIN_FLAGS),
    "eval": (training.evaluate, training.EVAL_FLAGS),
    "export": (export.export, export.EXPORT_FLAGS),
    "predict": (export.predict, export.PREDICT_FLAGS), "app": (webapp.app, webapp.APP_FLAGS),
    "serve": (webapp.serve, webapp.SERVE_FLAGS), "search": (search.search, search.SEARCH_FLAGS),
    "budget": (search.budget, search.BUDGET_FLAGS)}
COMMANDS = {name: function for name, (function, _) in _COMMANDS.items()}
COMMAND_FLAGS: dict[str, dict[str, Flag]] = {
    name: {flag: text if isinstance(text, Flag) else Flag(text) for flag, text in table.items()}
    for name, (_, table) in _COMMANDS.items()}
# the commands that take positional arguments, and what those are (their usage line)
POSITIONAL = {"predict": "IMAGE|FOLDER ...", "serve": "DIR"}


def flag_values(command: str) -> flags.FlagValues:
    """The command's flags in a FlagValues of their own, each of its parameter's kind and
    default (a group's flag: its Flag's kind, default None)."""
    own, kinds = flags.FlagValues(), parameters(COMMANDS[command])
    for name, flag in COMMAND_FLAGS[command].items():
        kind, values, default = kinds.get(name, (flag.kind, (), None))
        getattr(flags, f"DEFINE_{kind}")(name=name, default=default, help=flag.help,
                                         flag_values=own, **({"enum_values": list(values)}
                                                             if kind == "enum" else {}))
    return own


def parse(argv: list[str]) -> tuple[str | None, dict[str, Any], list[str], list[str]]:
    """(command, its flags' values, positional arguments, flags of other commands given) of
    `argv` (argv[0]: the program). absl's own flags (--verbosity, --flagfile, ...) are parsed
    too; a flag no command takes, or a value of the wrong type, exits 1 as absl does."""
    at = next((i for i, arg in enumerate(argv[1:], 1) if not arg.startswith("-")), 0)
    command = argv[at] if at and argv[at] in COMMANDS else None  # absl's flags may come first
    argv = argv[:at] + argv[at + 1:] if command else argv
    others = set().union(*COMMAND_FLAGS.values()) - set(COMMAND_FLAGS.get(command, ()))
    args = argv[1:argv.index("--")] if "--" in argv else argv[1:]  # after "--": positional
    names = {arg.lstrip("-").split("=")[0] for arg in args if arg.startswith("-")}
    given = sorted({name[2:] if name.startswith("no") and name not in others else name
                    for name in names} & others) if command else []  # --noflag: flag
    flags.FLAGS.mark_as_parsed()
    if command is None or given:  # a usage error, raised by `dispatch`
        return command, {}, [] if command else argv[1:], given
    own = flag_values(command)
    own.append_flag_values(flags.FLAGS)  # absl's flag objects: parsing sets them too
    try:
        positional = own(argv)[1:]
    except flags.Error as error:
        sys.stderr.write(f"FATAL Flags parsing error: {error}\n"
                         "Pass --helpshort or --helpfull to see help on flags.\n")
        sys.exit(1)
    return command, {name: own[name].value for name in COMMAND_FLAGS[command]}, positional, []


def dispatch(command: str | None, values: dict[str, Any], positional: list[str],
             others: list[str]) -> int:
    """Run the parsed command: its exit status, 2 (one line on stderr) for a user error."""
    try:
        if command is None or (positional and command not in POSITIONAL):
            got = " ".join([command or ""] + positional).strip() or "no command"
            raise app.UsageError(f"usage: effnet {{{'|'.join(COMMANDS)}}} [--flags]; got {got}")
        if others:
            raise app.UsageError(f"not `effnet {command}` flag(s): "
                                 f"{', '.join('--' + name for name in others)} "
                                 f"(`effnet {command} --help` lists its flags)")
        arguments: dict[str, Any] = {}
        for name, flag in COMMAND_FLAGS[command].items():  # a group: one dict of those given
            if flag.group and values[name] is not None:
                arguments.setdefault(flag.group, {})[name] = values[name]
            elif not flag.group:
                arguments[name] = flag.convert(values[name]) if flag.convert else values[name]
        shown = warnings.showwarning
        warnings.showwarning = one_line_warning
        try:
            COMMANDS[command](*([positional] if command in POSITIONAL else []), **arguments)
        finally:
            warnings.showwarning = shown
    except (UserError, app.UsageError) as err:
        print(f"effnet{' ' + command if command else ''}: error: {cli_syntax(str(err), command)}",
              file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    """`effnet` in this process (argv[0]: the program): its exit status."""
    return dispatch(*parse(argv))


def cli_syntax(message: str, command: str | None) -> str:
    """A library message in the command's flags (`keras_effnet.cli.options.flag_syntax`)."""
    return flag_syntax(message, COMMANDS.get(command or ""), COMMAND_FLAGS.get(command or "", {}))


def command_help(command: str) -> str:
    """`effnet COMMAND --help`: what the command does, and the flags it takes with their
    meaning for it."""
    own = flag_values(command)
    lines = [" ".join(["usage: effnet", command, "[--flags]"]
                      + ([POSITIONAL[command]] if command in POSITIONAL else [])), "",
             inspect.cleandoc(COMMANDS[command].__doc__ or ""), "", "flags:"]
    for name, flag in COMMAND_FLAGS[command].items():
        text, default = own[name].help, own[name].default  # absl's help: enum values first
        default = ",".join(default) if isinstance(default, list) else default
        if "default" not in text and default is not None and default is not False:
            text += f" (default {default})"  # a command's own text states its own default
        text += flag.note(name) if flag.note else ""
        lines.append(textwrap.fill(f"--{name}: {text}", 100, initial_indent="  ",
                                   subsequent_indent="      "))
    return "\n".join(lines)


def general_help() -> str:
    """`effnet --help`: the commands, each with the first paragraph of its description."""
    lines = [(keras_effnet.cli.__doc__ or "").rstrip(), "", "commands (`effnet COMMAND --help` "
             "lists a command's flags; `effnet --helpfull` every flag):"]
    for name, command in COMMANDS.items():
        summary = " ".join(inspect.cleandoc(command.__doc__ or "").split("\n\n")[0].split())
        lines.append(textwrap.fill(summary, 100, initial_indent=f"  {name:<11} ",
                                   subsequent_indent=" " * 14))
    return "\n".join(lines)


def one_line_warning(message: Any, category: type, filename: str, lineno: int,
                     file: Any = None, line: str | None = None) -> None:
    """A warning as the CLI shows it: one line on stderr, without the source line Python
    adds."""
    print(f"warning: {' '.join(str(message).split())}", file=file or sys.stderr, flush=True)


def run() -> None:
    """The `effnet` console script."""
    # absl's own --help lists only __main__'s flags (none: they are the commands') and exits 1.
    asked = {"--help", "-?", "--helpshort", "-h", "--helpfull"} & set(sys.argv[1:])
    if asked:
        words = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
        command = words[0] if words and words[0] in COMMANDS else None
        shown = [command] if command else list(COMMANDS) if "--helpfull" in asked else []
        print("\n\n".join(([] if command else [general_help()])
                          + [command_help(name) for name in shown]))
        sys.exit(0)

    def after_absl(parsed: tuple) -> None:
        if not flags.FLAGS["verbosity"].present:  # else the user asked for every line
            logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
            if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:  # else the user's own setting rules
                from keras_effnet.console import quiet_startup

                quiet_startup()  # before anything imports TensorFlow
        sys.exit(dispatch(*parsed))

    app.run(after_absl, flags_parser=parse)
