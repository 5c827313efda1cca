"""Parameters an action hands to another interpreter: a variable's value is data, never code.

An action declares such parameters with ``@action(..., code_params={"command": SHELL})``:

- ``SHELL``: text read by /bin/sh. No ``${…}`` may appear in it; the run's variables reach the
  command as environment variables (``$JOBS_PARAM_WHO``, see ``context.environment``), which the
  shell expands as data.
- ``ARGV``: the words of a command line. The author's text is split into words *before* any
  substitution; each variable then fills its own word only, and a value may never start a new
  option (a word the author did not begin with ``-``).
- ``FIXED``: written by the author alone: no variables at all (e.g. the name of a command).

The same rules refuse a line when it is saved (``written_problems``) and, for lines stored before
they existed, when it runs (``resolve_parameters``).
"""
from __future__ import annotations

import re
import shlex
from typing import Any, Literal

from django.core.exceptions import ValidationError

from . import context

SHELL, ARGV, FIXED = "shell", "argv", "fixed"
KINDS = (SHELL, ARGV, FIXED)

QuoteState = Literal["none", "single", "double", "command", "heredoc"]
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")
_SHOWN_VALUE_CHARS = 200


def written_problems(kind: str | None, value: Any) -> list[str]:
    """What is wrong with a code parameter as the author wrote it (empty: nothing)."""
    if kind is None or not isinstance(value, str):
        return []  # not code, or not text: the type check speaks
    if kind == ARGV:
        try:
            split_words(value)
        except ValueError as exc:
            return [str(exc)]
        return []
    return [_variable_refused(kind, name) for name in sorted(context.variables_in(value))]


def resolve_parameters(code_params: dict[str, str], parameters: dict[str, Any],
                       variables: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` with variables resolved; code parameters by their kind's rule.

    ValidationError names the parameter when a stored line breaks the rule (saved before it existed).
    """
    resolved, errors = {}, {}
    for name, value in parameters.items():
        kind = code_params.get(name)
        try:
            resolved[name] = _resolve_code(kind, value, variables) if kind and isinstance(value, str) \
                else context.resolve(value, variables)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return resolved


def _resolve_code(kind: str, text: str, variables: dict[str, Any]) -> str:
    if kind == ARGV:
        return shlex.join(argv(text, variables))  # the action's shlex.split gives back exactly these words
    used = sorted(context.variables_in(text))
    if used:
        raise ValueError(_variable_refused(kind, used[0]))
    return context.resolve(text, {})  # only $${ -> ${


def _variable_refused(kind: str, name: str) -> str:
    if kind == SHELL:
        return (f'${{{name}}} would be read by the shell as code; write "${context.env_name(name)}" instead '
                "(variables reach the command as environment variables)")
    return f"${{{name}}} cannot be used here: this parameter runs exactly as its author wrote it"


def variables_hint(code_params: dict[str, str], variables: list[str]) -> str:
    """What the line editor says about variables for an action with these code parameters."""
    shown = ", ".join("${" + name + "}" for name in variables)
    notes = []
    for name, kind in code_params.items():
        if kind == SHELL:
            envs = ", ".join(f'"${context.env_name(variable)}"' for variable in variables)
            notes.append(f"{name} gets them as environment variables: {envs}")
        elif kind == FIXED:
            notes.append(f"{name} takes none")
        else:
            notes.append(f"in {name} each fills its own word and never starts an option")
    return f"Values may use {shown}" + "".join(f"; {note}" for note in notes) + "."


# Command lines (ARGV) ---------------------------------------------------------------------------------------------

def split_words(text: str) -> list[str]:
    """The author's words, split like a shell does (before any variable is substituted)."""
    try:
        return shlex.split(text or "")
    except ValueError as exc:
        raise ValueError(f"cannot be split into words: {exc} in {text!r}") from None


def argv(template: str, variables: dict[str, Any]) -> list[str]:
    """The words of ``template`` with each variable filling its own word.

    A word that is exactly one variable becomes exactly the value (spaces, quotes and newlines
    included); a variable inside a word is substituted as text within that word. A value that
    would start an option where the author wrote none raises ValueError.
    """
    return [_fill_word(word, variables) for word in split_words(template)]


def _fill_word(word: str, variables: dict[str, Any]) -> str:
    filled = context.VARIABLE_RE.sub(lambda m: _substitute(m, variables), word)
    if filled.startswith("-") and not word.startswith("-"):
        name = next(m.group(2) for m in context.VARIABLE_RE.finditer(word) if not m.group(1))
        raise ValueError(_new_option(name, context.as_text(variables[name])))
    return filled


def _substitute(match: re.Match, variables: dict[str, Any]) -> str:
    if match.group(1):  # $${name} is written literally
        return "${" + match.group(2) + "}"
    return context.as_text(variables[match.group(2)])


def _new_option(name: str, value: str) -> str:
    shown = value if len(value) <= _SHOWN_VALUE_CHARS else value[:_SHOWN_VALUE_CHARS] + "…"
    option = value.split("=", 1)[0] if value.startswith("--") and len(value) > 2 and "=" in value else "--option"
    return (f"the value of ${{{name}}} would start a new option ({shown}); "
            f"write the option yourself, e.g. {option}=${{{name}}}")


# Shell commands stored before the rule (data migration) -----------------------------------------------------------

def quote_states(text: str) -> list[QuoteState]:
    """The /bin/sh quoting in force at each character of ``text``: outside quotes, in '…', in "…", in a
    command substitution (``$(…)`` or backquotes) opened inside "…", or in a here-document's body.

    Enough to place a variable reference. Inside such a substitution the shell starts reading afresh, so a
    reference there is neither quoted by the outer "…" nor placed by this scanner: ``command``, left as written.
    A here-document's body expands ``$NAME`` but keeps quotes as text (``heredoc``); with a quoted delimiter
    (``<<'EOF'``) it expands nothing, as in '…' (``single``).
    """
    states: list[QuoteState] = []
    state: QuoteState = "none"
    escaped = False
    depth, backquoted = 0, False  # a command substitution opened inside double quotes
    pending: list[_HereDocument] = []  # announced on this line; their bodies start at its end
    index = 0
    while index < len(text):
        char = text[index]
        states.append("command" if depth or backquoted else state)
        if escaped:
            escaped = False
        elif char == "\\" and state != "single":
            escaped = True
        elif depth or backquoted:
            depth += {"(": 1, ")": -1}.get(char, 0) if depth else 0
            backquoted = not backquoted if char == "`" and not depth else backquoted
        elif state == "single":
            state = "none" if char == "'" else state
        elif char == '"':
            state = "none" if state == "double" else "double"
        elif char == "'" and state == "none":
            state = "single"
        elif state == "double" and char == "$" and text.startswith("(", index + 1):
            depth = 1
            escaped = True  # the "(" that opens it is counted already: skip it
        elif state == "double" and char == "`":
            backquoted = True
        elif state == "none" and char == "<" and (announced := _here_document_at(text, index)):
            pending.append(announced)
        elif state == "none" and char == "\n" and pending:
            index = _here_document_bodies(text, index + 1, pending, states)
            pending = []
            continue
        index += 1
    return states


class _HereDocument:
    def __init__(self, delimiter: str, strip_tabs: bool, quoted: bool) -> None:
        self.delimiter, self.strip_tabs, self.quoted = delimiter, strip_tabs, quoted


_HERE_DOCUMENT = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]*)'|\"([^\"\n]*)\"|(\\?)([^\s;&|<>()'\"]+))")


def _here_document_at(text: str, index: int) -> _HereDocument | None:
    """The here-document a ``<<`` at ``index`` announces (not ``<<<``, a here-string)."""
    if text.startswith("<<<", index) or (index and text[index - 1] == "<"):
        return None
    match = _HERE_DOCUMENT.match(text, index)
    if match is None:
        return None
    strip_tabs, single, double, backslash, bare = match.groups()
    if bare is not None:
        quoted = bool(backslash) or any(mark in bare for mark in "'\"\\")
        return _HereDocument(re.sub(r"[\\'\"]", "", bare), bool(strip_tabs), quoted)
    return _HereDocument(single if single is not None else double, bool(strip_tabs), True)


def _here_document_bodies(text: str, start: int, documents: list[_HereDocument], states: list) -> int:
    """Marks the bodies of ``documents``, one after the other from ``start``; returns where the shell reads on.

    In an expanding body a command substitution (``$(…)``, backquotes) is read afresh by the shell, as in "…":
    ``command``, left as written.
    """
    index = start
    for document in documents:
        depth, backquoted = 0, False
        while index < len(text):
            end = text.find("\n", index)
            end = len(text) if end == -1 else end
            line = text[index:end]
            if (line.lstrip("\t") if document.strip_tabs else line) == document.delimiter:
                states.extend(["none"] * (end - index + (end < len(text))))
                index = end + 1
                break
            previous = ""
            for offset, char in enumerate(line + ("\n" if end < len(text) else "")):
                if document.quoted:
                    states.append("single")
                    continue
                opens = char == "$" and line.startswith("(", offset + 1)
                states.append("command" if depth or backquoted or opens or char == "`" else "heredoc")
                if opens or (depth and char == "(" and previous != "$"):  # "$(": counted at its "$"
                    depth += 1
                elif depth and char == ")":
                    depth -= 1
                elif char == "`" and not depth:
                    backquoted = not backquoted
                previous = char
            index = end + 1
    return min(index, len(text))


def made_safe(code_params: dict[str, str], parameters: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """``parameters`` with each known ``${variable}`` of a shell parameter rewritten as its environment variable.

    What a line's author writes as ``echo ${param.who}`` (the contract's definition files do) runs as
    ``echo "$JOBS_PARAM_WHO"``: the value is one word of data. A use that cannot be made safe (inside
    single quotes) or an unknown variable stays as written, and validation refuses it, naming it.
    """
    return {name: shell_env_form(value, only=known) if code_params.get(name) == SHELL and isinstance(value, str)
            else value for name, value in parameters.items()}


def shell_env_form(command: str, only: set[str] | None = None) -> str:
    """``command`` with each ``${variable}`` rewritten as its environment variable.

    Outside quotes ``"$JOBS_X"`` (one word, whatever the value); inside double quotes ``$JOBS_X``
    (``$${JOBS_X}`` when a name character follows, so the name does not run on); inside single
    quotes it is left as it is, and the line is refused when it runs.
    """
    states = quote_states(command)
    pieces, last = [], 0
    for match in context.VARIABLE_RE.finditer(command):
        if match.group(1) or states[match.start()] in ("single", "command") or (
                only is not None and match.group(2) not in only):
            continue
        env = context.env_name(match.group(2))
        if states[match.start()] == "none":
            reference = f'"${env}"'
        elif _NAME_CHAR.match(command, match.end()):
            reference = f"$${{{env}}}"
        else:
            reference = f"${env}"
        pieces += [command[last:match.start()], reference]
        last = match.end()
    return "".join(pieces) + command[last:]
