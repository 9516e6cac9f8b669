"""PII redaction for everything the project writes down: log records, audit details, query-log text.

Users type personal data into queries and documents carry it; none of it may reach a log file, the audit trail or
the query log. Each detector is a pattern plus, where a pattern alone would catch ordinary numbers, a checksum
(Luhn for payment cards, ISO 13616 mod-97 for IBANs, ``ipaddress`` for IPv6). A match is replaced by
``[KIND:pseudonym]``: the pseudonym is a salted hash of the value, so the same address always reads the same and a
reviewer can follow one person through the records without seeing who it is. The salt comes from ``RAG_PII_SALT``
(set it to keep pseudonyms stable across processes); without it each process draws its own, which still redacts
everything but links a value only within one process.

National ids covered: US Social Security numbers (dashed, ``123-45-6789``) and UK National Insurance numbers
(``QQ 12 34 56 C``). Phone numbers: international (``+`` and 8 to 15 digits), North American
(``(555) 123-4567``, ``555-123-4567``) and national trunk-prefixed ones with separators (``020 7946 0958``).
"""

import hashlib
import hmac
import ipaddress
import logging
import math
import os
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SALT_VARIABLE = "RAG_PII_SALT"
PROJECT_LOGGERS = ("rag_core", "rag_assets")
MIN_TOKEN_CHARS = 32  # generic secrets: shorter mixed strings are too often ordinary identifiers
MIN_TOKEN_ENTROPY = 3.5  # bits per character; English words and hex digests stay below it with three classes


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _card(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


def _iban(match: str) -> bool:
    compact = match.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ipv6(match: str) -> bool:
    try:
        ipaddress.IPv6Address(match)
    except ValueError:
        return False
    return any(c.isalnum() for c in match)


def _phone(match: str) -> bool:
    return 8 <= len(re.sub(r"\D", "", match)) <= 15


def _high_entropy(match: str) -> bool:
    """Random-looking: upper case, lower case and digits all present, and about 3.5+ bits per character."""
    if not (re.search(r"[a-z]", match) and re.search(r"[A-Z]", match) and re.search(r"\d", match)):
        return False
    counts = Counter(match)
    entropy = -sum(n / len(match) * math.log2(n / len(match)) for n in counts.values())
    return entropy >= MIN_TOKEN_ENTROPY


@dataclass(frozen=True)
class Detector:
    """One kind of personal data or secret: a pattern, and a check every match must pass (None: any match)."""

    kind: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None


# Order matters: secrets and structured ids go first, so a phone or card pattern never eats part of a key or IBAN.
DETECTORS: tuple[Detector, ...] = (
    Detector("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    Detector(
        "API_KEY",
        re.compile(
            r"\b(?:sk-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_-]{16,}|sk_(?:live|test)_[A-Za-z0-9]{16,}"
            r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}|(?:AKIA|ASIA)[0-9A-Z]{16}\b"
            r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"
        ),
    ),
    Detector("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
    Detector("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), _iban),
    # A digit run glued to letters is part of an id (a uuid hex, a digest), never a card number written out.
    Detector("CARD", re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"), _card),
    Detector("SSN", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")),
    Detector("NINO", re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")),
    Detector(
        "IPV6",
        re.compile(
            r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
            r"(?![\w:])"
        ),
        _ipv6,
    ),
    Detector(
        "IPV4",
        re.compile(
            r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
            r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.])"
        ),
    ),
    Detector(
        "PHONE",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
            r"|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4}|0\d{2,4}[ -]\d{3,4}[ -]\d{3,4})(?![\w-])"
        ),
        _phone,
    ),
    Detector("SECRET", re.compile(rf"(?<![\w/+=-])[A-Za-z0-9_+/=-]{{{MIN_TOKEN_CHARS},}}(?![\w/+=-])"), _high_entropy),
)


@dataclass(frozen=True)
class Redaction:
    """Redacted text and what was taken out of it, by kind (``EMAIL``, ``CARD``, ...)."""

    text: str
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Redactor:
    """Applies ``DETECTORS`` in order; thread-safe, and counts every redaction it made (``totals``)."""

    def __init__(self, salt: bytes | None = None) -> None:
        self._salt = salt if salt is not None else _salt_from_environment()
        self._totals: Counter[str] = Counter()
        self._lock = threading.Lock()

    def pseudonym(self, kind: str, value: str) -> str:
        """A stable stand-in for ``value``: the same value and salt always give the same ten hex digits."""
        return hmac.new(self._salt, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:10]

    def redact(self, text: str) -> Redaction:
        counts: Counter[str] = Counter()
        for detector in DETECTORS:

            def replace(match: re.Match[str], detector: Detector = detector) -> str:
                value = match.group(0)
                if detector.check is not None and not detector.check(value):
                    return value
                counts[detector.kind] += 1
                return f"[{detector.kind}:{self.pseudonym(detector.kind, value)}]"

            text = detector.pattern.sub(replace, text)
        if counts:
            with self._lock:
                self._totals.update(counts)
        return Redaction(text, dict(counts))

    def redact_value(self, value: Any) -> tuple[Any, int]:
        """Strings inside mappings, lists and tuples redacted (keys kept: they are ours, not users'); the count."""
        if isinstance(value, str):
            result = self.redact(value)
            return result.text, result.total
        if isinstance(value, Mapping):
            pairs = [(key, self.redact_value(item)) for key, item in value.items()]
            return {key: item for key, (item, _) in pairs}, sum(n for _, (_, n) in pairs)
        if isinstance(value, (list, tuple)):
            items = [self.redact_value(item) for item in value]
            return type(value)(item for item, _ in items), sum(n for _, n in items)
        return value, 0

    @property
    def totals(self) -> dict[str, int]:
        """Redactions made by this redactor since the process started, by kind."""
        with self._lock:
            return dict(self._totals)


def _salt_from_environment() -> bytes:
    configured = os.environ.get(SALT_VARIABLE, "")
    return configured.encode() if configured else secrets.token_bytes(16)


_default: Redactor | None = None
_default_lock = threading.Lock()


def default_redactor() -> Redactor:
    """The process's redactor, made on first use (so ``RAG_PII_SALT`` set before that is honoured)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Redactor()
        return _default


def redact(text: str) -> Redaction:
    return default_redactor().redact(text)


def redact_details(details: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """An audit record's details with every string value redacted, and how many redactions that took."""
    redacted, count = default_redactor().redact_value(details)
    return dict(redacted), count


# --- log records ------------------------------------------------------------------------------------------------------


class PIILogFilter(logging.Filter):
    """Rewrites a record's message (arguments merged in) and its traceback text with PII redacted; never drops one.

    Filters attached to a logger only see records logged on that very logger, not on its children, so
    ``install_log_redaction`` runs this on every record the project's loggers create, at creation.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = default_redactor()
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format: keep the template, drop the args
            message = str(record.msg)
        record.msg, record.args = redactor.redact(message).text, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.redact(record.exc_text).text
        if record.stack_info:
            record.stack_info = redactor.redact(record.stack_info).text
        return True


_installed = False


def install_log_redaction(prefixes: tuple[str, ...] = PROJECT_LOGGERS) -> None:
    """Redact every record made by a logger under ``prefixes``, before any handler (file, console, Dagster's) sees
    it. Idempotent; chains whatever record factory was in place."""
    global _installed
    with _default_lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()
    log_filter = PIILogFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _in_project(record.name, prefixes):
            log_filter.filter(record)
        return record

    logging.setLogRecordFactory(factory)


def _in_project(name: str | None, prefixes: tuple[str, ...]) -> bool:
    """``name`` is None for records built by ``logging.makeLogRecord`` (Dagster's log manager does that)."""
    return name is not None and any(name == p or name.startswith(f"{p}.") for p in prefixes)
