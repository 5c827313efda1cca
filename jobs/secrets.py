"""Secrets: encryption at rest, references in line parameters, and masking of what a run shows.

Values are encrypted with Fernet (``cryptography``) through a ``MultiFernet``
built from ``JOBS_SECRET_KEYS`` (comma-separated Fernet keys): the first key
encrypts, every key decrypts. Rotation: put a new key first, run
``manage.py rotate_secrets`` (re-encrypts everything with the first key), then
drop the old key. Without ``JOBS_SECRET_KEYS`` the key is derived from Django's
``SECRET_KEY`` (HKDF-SHA256); production should set its own keys.

Where secrets live, and how a run meets them:

- the secret store (``jobs.models.Secret``): line parameters refer to
  ``${secret.NAME}``; a shell command reads ``$JOBS_SECRET_NAME`` (given to the
  process only when the line names it). Resolved in the worker, never stored.
- run-time parameters of type ``secret``: stored sealed (``{"$secret": token}``)
  on the result, opened only by the worker.
- action parameters declared ``Secret`` and sensitive keys of JSON objects
  (``Authorization``, ``Cookie``, ``*token*``, ``*secret*``, ``*password*``,
  ``api-key``) must reference a secret: a literal is refused when the line is
  saved, so a job definition (and its export) never holds one.

A run masks every resolved secret value (``MASK``) in what it stores: the
variables, the lines' arguments and messages, and the log.
"""
from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

MASK = "••••"
SEALED_KEY = "$secret"  # a sealed value as stored in JSON: {"$secret": "<Fernet token>"}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
NAME_RULE = "lowercase letters, digits and _, starting with a letter"
SECRET_PREFIX = "secret."  # noqa: S105  (the variable namespace, not a password)
ENV_PREFIX = "JOBS_SECRET_"
# How a shell command (or any text) names a stored secret it reads from the environment.
ENV_REFERENCE_RE = re.compile(r"\bJOBS_SECRET_([A-Z][A-Z0-9_]*)\b")
# Names whose values are credentials: in a JSON object parameter (HTTP headers...) they must reference a secret.
SENSITIVE_NAME = re.compile(r"authorization|cookie|token|secret|password|passwd|api[-_]?key", re.IGNORECASE)


class Secret(str):
    """Annotate an action parameter with it: the line must give a reference (``${secret.NAME}``), never a value.

    ``def login(ctx, user: str, password: Secret): ...``
    """


class SecretError(ValueError):
    """A value that cannot be decrypted with the configured keys."""


# --- encryption -------------------------------------------------------------------------------------------------

def derived_key(secret_key: str) -> bytes:
    """A Fernet key derived from Django's SECRET_KEY (used when JOBS_SECRET_KEYS is not set)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"jobs.secrets", info=b"fernet key for stored secrets")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode("utf-8")))


def configured_keys() -> tuple[str, ...]:
    keys = tuple(key.strip() for key in getattr(settings, "JOBS_SECRET_KEYS", []) if key.strip())
    return keys or (derived_key(settings.SECRET_KEY).decode("ascii"),)


@functools.lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...], purpose: bytes | None = None) -> MultiFernet:
    if purpose is not None:
        keys = tuple(purpose_key(key, purpose) for key in keys)
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise SecretError(f"JOBS_SECRET_KEYS: each key must be a Fernet key (32 url-safe base64 bytes): {exc}") from exc


_UNREADABLE = "cannot be decrypted with the keys in JOBS_SECRET_KEYS (was a key removed?)"


def purpose_key(key: str, purpose: bytes) -> str:
    """A Fernet key for one ``purpose``, derived from a configured key (HKDF-SHA256): what one purpose
    encrypts, another cannot open."""
    try:
        material = base64.urlsafe_b64decode(key.encode("ascii"))
    except (ValueError, UnicodeError) as exc:
        raise SecretError(f"JOBS_SECRET_KEYS: each key must be a Fernet key (32 url-safe base64 bytes): {exc}") from exc
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"jobs.secrets", info=b"purpose: " + purpose)
    return base64.urlsafe_b64encode(hkdf.derive(material)).decode("ascii")


# Sealed run-time values and the secrets a form carries to its next step have keys of their own: a stored
# secret's token is not a sealed value, nor the reverse, so a token copied from one place never opens in another.
SEALING = b"sealed run-time parameters"
CARRIED = b"secrets a form carries to its next step"


def _fernet(purpose: bytes | None = None) -> MultiFernet:
    return _fernet_for(configured_keys(), purpose)


def _encrypted(text: str, purpose: bytes | None = None) -> str:
    return _fernet(purpose).encrypt(str(text).encode("utf-8")).decode("ascii")


def _decrypted(token: str, purpose: bytes | None = None) -> str:
    try:
        return _fernet(purpose).decrypt(str(token).encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise SecretError(_UNREADABLE) from exc


def _rotated(token: str, purpose: bytes | None = None) -> str:
    try:
        return _fernet(purpose).rotate(str(token).encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise SecretError(_UNREADABLE) from exc


def encrypt(text: str) -> str:
    """A stored secret's token."""
    return _encrypted(text)


def decrypt(token: str) -> str:
    return _decrypted(token)


def rotate(token: str) -> str:
    """The token encrypted again with the first key (``MultiFernet.rotate``)."""
    return _rotated(token)


def carried(text: str) -> str:
    """``text`` encrypted for a form's hidden field: posted back, it opens only what a form of this site sealed."""
    return _encrypted(text, CARRIED)


def carried_back(token: str) -> str:
    return _decrypted(token, CARRIED)


# --- sealed values (run-time parameters of type secret) ---------------------------------------------------------

def seal(text: str) -> dict[str, str]:
    return {SEALED_KEY: _encrypted(text, SEALING)}


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED_KEY} and isinstance(value[SEALED_KEY], str)


def unseal(value: Any) -> str:
    return _decrypted(value[SEALED_KEY], SEALING)


def seal_again(value: dict[str, str]) -> dict[str, str]:
    """A sealed value encrypted again with the first key (rotation)."""
    return {SEALED_KEY: _rotated(value[SEALED_KEY], SEALING)}


def sealed_with_stored_secrets_key(value: dict[str, str]) -> dict[str, str]:
    """A value sealed before sealing had keys of its own (the stored secrets' keys), sealed again with them."""
    return seal(_decrypted(value[SEALED_KEY]))


def masked_values(values: dict | None) -> dict:
    """``values`` with every sealed value shown as MASK (what pages, the API and mails show)."""
    return {name: MASK if is_sealed(value) else value for name, value in (values or {}).items()}


def revealed_values(values: dict | None, secret_names: Iterable[str]) -> dict:
    """``values`` with the sealed values of the secret parameters ``secret_names`` opened (the worker only).

    Only those: another parameter's value shaped like a sealed one is data, never opened.
    """
    names = set(secret_names)
    return {name: unseal(value) if name in names and is_sealed(value) else value
            for name, value in (values or {}).items()}


# --- references in line parameters ------------------------------------------------------------------------------

def variable_name(name: str) -> str:
    return f"{SECRET_PREFIX}{name}"


def environment_name(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def referenced_names(value: Any) -> set[str]:
    """The stored secrets ``value`` names: ``${secret.NAME}`` or ``JOBS_SECRET_NAME`` in any of its strings."""
    from .context import strings_in, variables_in

    names = {name[len(SECRET_PREFIX):] for name in variables_in(value) if name.startswith(SECRET_PREFIX)}
    for text in strings_in(value):
        names.update(match.group(1).lower() for match in ENV_REFERENCE_RE.finditer(text))
    return names


def references_a_secret(value: Any, secret_variables: set[str]) -> bool:
    """True when ``value`` uses one of ``secret_variables`` (``secret.NAME``, ``param.NAME`` of a secret param)."""
    from .context import variables_in

    return bool(variables_in(value) & secret_variables)


def _literal_credentials(declared: list[dict], parameters: dict, secret_variables: set[str]):
    """(parameter, key or None) of each credential held in clear instead of a reference."""
    for spec in declared:
        name, value = spec["name"], parameters.get(spec["name"])
        if value in (None, ""):
            continue
        if spec.get("type") == "secret" and not references_a_secret(value, secret_variables):
            yield name, None
        if isinstance(value, dict):
            for key, item in value.items():
                if SENSITIVE_NAME.search(str(key)) and item not in (None, "") \
                        and not references_a_secret(item, secret_variables):
                    yield name, key


def without_literal_credentials(declared: list[dict], parameters: dict, secret_variables: set[str]) -> dict:
    """``parameters`` with credentials held in clear (lines saved before this rule) replaced by MASK: an export."""
    hidden = dict(parameters)
    for name, key in _literal_credentials(declared, parameters, secret_variables):
        hidden[name] = MASK if key is None else {**hidden[name], key: MASK}
    return hidden


def literal_secret_problems(declared: list[dict], parameters: dict, secret_variables: set[str]) -> list[str]:
    """Line parameters that hold a credential in clear instead of a reference; each message names it."""
    problems = []
    for name, key in _literal_credentials(declared, parameters, secret_variables):
        if key is None:
            problems.append(f"{name}: a secret is never typed into a line: reference a stored secret, "
                            "e.g. ${secret.api_token}, or a run-time parameter of type secret")
        else:
            problems.append(f"{name}: {key} must reference a secret, e.g. ${{secret.api_token}} "
                            "(a credential is never stored in a line)")
    return problems


# --- masking ----------------------------------------------------------------------------------------------------

class Masker:
    """Replaces every occurrence of known secret values with MASK; free when there are none."""

    def __init__(self, values: Iterable[Any] = ()) -> None:
        texts = {str(value) for value in values if value not in (None, "")}
        # A shell logs output line by line: each line of a multi-line secret (a key file) is masked too.
        texts |= {line for text in texts if "\n" in text for line in text.splitlines() if line.strip()}
        # Longest first, so a secret that contains another is masked whole.
        self._pattern = re.compile("|".join(map(re.escape, sorted(texts, key=len, reverse=True)))) if texts else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def value(self, value: Any) -> Any:
        """``value`` (JSON) with secrets masked in every string, keys included."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(key)): self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value


# --- a run's secrets (the worker) -------------------------------------------------------------------------------

def stored_values(domain_id: int | None, names: set[str]) -> tuple[dict[str, str], list[str]]:
    """The values of the stored secrets ``names`` usable by ``domain_id``, and what could not be opened."""
    from .models import Secret

    values, problems = {}, []
    for secret in Secret.objects.usable_by(domain_id).filter(name__in=sorted(names)):
        try:
            values[secret.name] = secret.reveal()
        except SecretError as exc:
            problems.append(f"The secret {secret.name} {exc}.")
    return values, problems
