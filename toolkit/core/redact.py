"""The one redaction function of the toolkit, and the logging filter built on it.

``redact(text)`` masks, in any text:

* secrets the toolkit has seen (every :class:`toolkit.core.credentials.Secret`, every access token,
  TGT and signed upload URL a client receives is registered here),
* ``Authorization`` header values, token-like query parameters and ``key=value`` pairs,
  Boknett tickets (``TGT-…``), JWT-shaped tokens and passwords in URLs,
* Danish CPR numbers (``0101901234`` or ``010190-1234`` becomes ``010190-****``): in free text a plain
  run of ten ASCII digits is masked when it starts like a date (``DDMM``), so ids, timestamps and ISBNs
  keep their digits; a run of ten digits written with any non-ASCII digits (fullwidth ``０１０１…``,
  Arabic-Indic ``٠١٠١…``) is always masked, and in a *file name* (:func:`redact_file_name`,
  ``redact(name, file_name=True)``) every run of exactly ten digits is masked, whatever its digits.

It is applied to every exception message (``toolkit.core.errors``), to log records of the toolkit's,
httpx's, httpcore's and uvicorn's loggers (:func:`install_log_redaction`) and to every ``repr`` of an
object that holds a secret.
"""

from __future__ import annotations

import logging
import re
import sys
import threading

__all__ = ["redact", "redact_file_name", "mask_cpr", "register_secret", "get_logger", "install_log_redaction", "RedactingFilter"]

MASK = "***"

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: list[str] | None = None  # the registered secrets, longest first (None: to be sorted again)

#: query/body parameter names whose values are secrets
SECRET_KEYS = (
    "access_token", "refresh_token", "id_token", "token", "client_secret", "password", "passwd",
    "secret", "api_key", "apikey", "signature", "sig", "x-amz-signature", "x-amz-credential",
    "x-goog-signature", "servicekey", "serverkey",
)
_keys = "|".join(re.escape(k) for k in sorted(SECRET_KEYS, key=len, reverse=True))
#: names masked after a bare colon in free text too
_strict_keys = "|".join(re.escape(k) for k in ("access_token", "refresh_token", "client_secret", "password",
                                               "passwd", "api_key", "apikey"))

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: Bearer abc / "authorization": "Basic abc" / Authorization: Boknett TGT-…
    (re.compile(r"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\"']?)(?:(bearer|basic|boknett|token)\s+)?[^\s\"',}]+"),
     lambda m: f"{m.group(1)}{(m.group(2) + ' ') if m.group(2) else ''}{MASK}"),
    # Bearer abc anywhere
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/=]{8,}"), lambda m: f"{m.group(1)} {MASK}"),
    # ?access_token=abc&…  or  client_secret=abc  or  "token": "abc"  (= or a quoted JSON key: any name)
    (re.compile(rf"(?i)((?:[?&;\s,{{(\"']|^)(?:{_keys})\s*=\s*[\"']?)[^\s&#\"',;}})]+"),
     lambda m: f"{m.group(1)}{MASK}"),
    (re.compile(rf"(?i)([\"'](?:{_keys})[\"']\s*:\s*[\"']?)[^\s&#\"',;}})]+"),
     lambda m: f"{m.group(1)}{MASK}"),
    # password: abc  (a bare colon in prose only for names that are unmistakably secrets, so that
    # "access token: not found" keeps its words)
    (re.compile(rf"(?i)(\b(?:{_strict_keys})\s*:\s*)[^\s&#\"',;}})]+"),
     lambda m: f"{m.group(1)}{MASK}"),
    # Boknett ticket granting tickets
    (re.compile(r"TGT-[A-Za-z0-9\-._]+"), lambda m: f"TGT-{MASK}"),
    # JWT-shaped tokens
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), lambda m: MASK),
    # user:password@host in URLs
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), lambda m: f"{m.group(1)}{MASK}@"),
]

# CPR: DDMMYY-SSSS always; DDMMYYSSSS when DD and MM look like a day and a month.
_CPR_DASHED = re.compile(r"(?<![\d])(\d{6})-(\d{4})(?![\d])")
_CPR_PLAIN = re.compile(r"(?<![\d])((?:0[1-9]|[12]\d|3[01])(?:0[1-9]|1[0-2])\d{2})(\d{4})(?![\d])")
# any run of exactly ten digits (``\d`` is every Unicode decimal digit): file names, non-ASCII digit runs
_TEN_DIGITS = re.compile(r"(?<!\d)(\d{6})(\d{4})(?!\d)")


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` masks it wherever it appears."""
    global _secret_re
    if not value or not isinstance(value, str) or len(value) < 6:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        _secret_re = None  # compiled again on the next redact(): registering stays cheap


def _secrets_longest_first() -> "list[str]":
    global _secret_re
    ordered = _secret_re
    if ordered is None:
        with _lock:
            ordered = _secret_re = sorted(_secrets, key=len, reverse=True)  # type: ignore[assignment]
    return ordered  # type: ignore[return-value]


def mask_cpr(value: object) -> str:
    """Mask one CPR number for display: ``0101901234`` → ``010190-****``.

    Anything that is not a CPR number is shown as given — so the analyst sees which input was wrong
    (``abc``, ``True``, ``12345``) — except any run of six or more digits in it, which could be (part of)
    one and is shown as asterisks (``010190123`` → ``*********``).
    """
    if value is None:
        return ""
    try:
        import pandas as pd

        if pd.isna(value):  # type: ignore[arg-type]
            return ""
    except (TypeError, ValueError):
        pass
    text = str(value).strip()
    digits = re.sub(r"[\s-]", "", text)
    if len(digits) == 10 and digits.isdigit():
        return f"{digits[:6]}-****"
    if not text:
        return ""
    return _DIGIT_RUN.sub(lambda m: "*" * len(m.group()), text)


#: six or more digits (any script's), possibly split by spaces or dashes: could be (part of) a CPR number
_DIGIT_RUN = re.compile(r"\d(?:[\s-]?\d){5,}")


def _masked_scalar(value: object) -> "str | None":
    """The display text of a value taken out of a ``cpr``/``redacted`` column (whose ``str()`` is the number,
    for code), or None for anything else. Without :mod:`toolkit.core.cpr_dtype` loaded there is no such value."""
    module = sys.modules.get(f"{__package__}.cpr_dtype")
    if module is not None and isinstance(value, module.CprStr):
        return value.masked
    return None


def redact(text: object, *, file_name: bool = False) -> str:
    """Return ``text`` with every secret and every CPR number masked.

    ``file_name=True`` masks every run of exactly ten digits (a file is named after the CPR it holds,
    valid or not); otherwise plain ASCII runs are masked only when they start like a date. A value of a
    ``cpr`` column is masked whole (``010190-****``) whatever its digits.
    """
    if text is None:
        return ""
    masked = _masked_scalar(text)
    if masked is not None:
        return masked
    out = str(text)
    for secret in _secrets_longest_first():  # plain substring search: cheap for thousands of secrets
        if secret in out:
            out = out.replace(secret, MASK)
    for regex, repl in _PATTERNS:
        out = regex.sub(repl, out)
    out = _CPR_DASHED.sub(lambda m: f"{m.group(1)}-****", out)
    out = _CPR_PLAIN.sub(lambda m: f"{m.group(1)}-****", out)
    out = _TEN_DIGITS.sub(lambda m: f"{m.group(1)}-****" if file_name or not m.group(0).isascii() else m.group(0),
                          out)
    return out


def redact_file_name(name: object) -> str:
    """A file name for display: secrets and every run of exactly ten digits masked (``0101901234.jpg``,
    ``3201901234.jpg`` and ``０１０１９０１２３４.jpg`` all show ``DDMMYY-****``)."""
    return redact(name, file_name=True)


def _for_eyes(value: object) -> object:
    masked = _masked_scalar(value)
    return value if masked is None else masked


class RedactingFilter(logging.Filter):
    """Logging filter that renders the record's message and replaces it by its redacted form."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 - logging API
        # a CPR value passed as an argument (log.info("sent %s", v)) is shown masked whatever its digits
        if isinstance(record.args, tuple):
            record.args = tuple(_for_eyes(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _for_eyes(v) for k, v in record.args.items()}
        record.msg = _for_eyes(record.msg)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()
_THIRD_PARTY = (
    "httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
    "uvicorn", "uvicorn.error", "uvicorn.access", "starlette", "asyncio",
)


def _attach(logger: logging.Logger) -> logging.Logger:
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def get_logger(name: str) -> logging.Logger:
    """A logger of the toolkit with the redaction filter attached (filters are not inherited)."""
    return _attach(logging.getLogger(name))


def install_log_redaction() -> None:
    """Attach the redaction filter to the toolkit's and the HTTP stack's loggers."""
    _attach(logging.getLogger("toolkit"))
    for name in _THIRD_PARTY:
        _attach(logging.getLogger(name))


install_log_redaction()
