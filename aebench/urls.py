"""Store URLs (``--checkpoints``): resolved and checked before anything is written, and never
shown with their credentials.

A URL may carry a secret: a password in its user part (``s3://key:secret@bucket/x``,
``file://alice:pw@/ck``) or a query value named like one (``?token=...``, ``?X-Amz-Signature=...``).
:func:`mask` removes them from any text: the URL itself, and the secret wherever it shows up
again (a path fsspec built from the URL, an exception's words). URLs handed to :func:`remember`
are masked in every later message of this process (the CLI's errors and warnings, run folders).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aebench.errors import ResultsError

HIDDEN = "***"
#: ``scheme://user:password@``: the password part
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<secret>[^/\s@]+)@")
#: query keys whose value is a secret (case-insensitive substrings)
_SECRET_KEYS = ("password", "passwd", "pwd", "secret", "token", "key", "signature", "sig", "credential", "auth")
#: secrets of the URLs this process was given (masked in every message it writes)
_REMEMBERED: set[str] = set()


def secrets(url: str) -> list[str]:
    """The secret parts of ``url``: its password, and query values with a secret-sounding name."""
    found = [m.group("secret") for m in _USERINFO.finditer(url)]
    try:
        query = urlsplit(url).query
    except ValueError:
        query = ""
    for key, value in parse_qsl(query, keep_blank_values=False):
        if value and any(word in key.lower() for word in _SECRET_KEYS):
            found.append(value)
    return [s for s in found if len(s) >= 3]  # a one-letter "secret" would mask half the text


def remember(url: str | None) -> None:
    """Mask ``url``'s secrets in every message this process writes from now on."""
    if url:
        _REMEMBERED.update(secrets(url))


def mask(text: Any, *urls: str | None) -> str:
    """``text`` with every URL's password (and the secrets of ``urls`` and of remembered URLs) hidden."""
    text = _USERINFO.sub(lambda m: f"{m.group('head')}{HIDDEN}@", str(text))
    hidden = set(_REMEMBERED)
    for url in urls:
        if url:
            hidden.update(secrets(url))
    for secret in sorted(hidden, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


class _MaskSecrets(logging.Filter):
    """On the ``aebench`` logger: a remembered URL's secrets never reach a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _REMEMBERED or "@" in str(record.msg):
            record.msg, record.args = mask(record.getMessage()), None
        return True


logging.getLogger("aebench").addFilter(_MaskSecrets())


def resolve_store(url: str) -> tuple[Any, str]:
    """``url``'s fsspec file system and path; a protocol fsspec does not know, or whose package is not
    installed, is one :class:`ResultsError` (exit 2) naming the masked URL."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise ResultsError(
            f"--checkpoints {mask(url)}: its protocol needs a package that is not installed ({mask(exc, url)}); "
            "install it, or choose another store."
        ) from None
    except Exception as exc:  # fsspec: ValueError("Protocol not known"), or a malformed URL
        raise ResultsError(
            f"--checkpoints {mask(url)} is not a usable store URL ({mask(exc, url)}); give a folder or an fsspec URL "
            "such as file:///path, s3://bucket/prefix or memory://name."
        ) from None


def check_store(url: str) -> None:
    """Resolve ``url``, check its protocol, and write (then remove) a probe in it: a store that cannot
    hold checkpoints (a file in its place, read-only, no permission, unreachable) is one
    :class:`ResultsError` (exit 2) before anything is written under ``--out``."""
    remember(url)
    fs, path = resolve_store(url)
    probe = f"{path.rstrip('/')}/.aebench-probe.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if fs.exists(path) and not fs.isdir(path):
            raise NotADirectoryError(f"{path} is a file")
        fs.makedirs(path, exist_ok=True)
        with fs.open(probe, "wb") as fh:
            fh.write(b"aebench")
        fs.rm(probe)
    except Exception as exc:  # OSError, or a store's own error type: the store is not usable
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ResultsError(
            f"--checkpoints {mask(url)} cannot hold checkpoints ({mask(why, url)}): it must be a folder (or "
            "bucket prefix) aebench can write; nothing was written."
        ) from None
