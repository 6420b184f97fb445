"""CNICs and phone numbers: normalisation, validation, formatting and masking (SPEC §2, §3)."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from stdnum.pk import cnic as stdnum_cnic

# Urdu/Persian (U+06F0..) and Arabic-Indic (U+0660..) digits become ASCII before any parsing.
_DIGITS = {ord(c): str(i) for i, c in enumerate("۰۱۲۳۴۵۶۷۸۹")}
_DIGITS.update({ord(c): str(i) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩")})
# Zero-width and bidi controls that phones and copy-paste insert around numbers.
_INVISIBLE = dict.fromkeys(
    [
        8203,
        8204,
        8205,
        8206,
        8207,
        8288,
        65279,
        1564,
        173,
        *list(range(8234, 8239)),
        *list(range(8294, 8298)),
    ]
)
# Inside a CNIC people type dashes (ASCII or Unicode), spaces and dots.
_CNIC_SEPARATORS = re.compile(r"[\s\-‐-―−.]+")
_CNIC_TEXT = re.compile(r"^[0-9]{13}$", re.ASCII)
_CNIC_IN_TEXT = re.compile(r"(?<![0-9])[0-9][0-9\s\-‐-―−.]{11,20}[0-9](?![0-9])", re.ASCII)


def normalise_text(text: str) -> str:
    """NFKC, ASCII digits, no invisible controls, trimmed: the form every parser sees."""
    text = unicodedata.normalize("NFKC", text)
    return text.translate(_DIGITS).translate(_INVISIBLE).strip()


class InvalidCnic(ValueError):
    """The text is not a CNIC (13 digits, province digit 1–7)."""


@dataclass(frozen=True, slots=True)
class Cnic:
    """A valid CNIC, kept as its 13 digits."""

    digits: str

    @classmethod
    def parse(cls, text: str) -> Cnic:
        """Read a CNIC typed any way people type it, or raise InvalidCnic."""
        compact = _CNIC_SEPARATORS.sub("", normalise_text(text))
        if not _CNIC_TEXT.match(compact):
            raise InvalidCnic(text)
        if compact[0] not in "1234567":
            raise InvalidCnic(text)
        return cls(compact)

    @property
    def formatted(self) -> str:
        """`XXXXX-XXXXXXX-X`, the way it is printed on the card."""
        return stdnum_cnic.format(self.digits)

    @property
    def masked(self) -> str:
        """`35202-*******-1`: enough to tell answers apart, too little to reuse."""
        return mask_cnic(self.digits)

    @property
    def province_code(self) -> int:
        return int(self.digits[0])

    @property
    def gender(self) -> str:
        """`M` for an odd last digit, `F` for an even one (NADRA's convention)."""
        return "M" if int(self.digits[-1]) % 2 else "F"

    def __str__(self) -> str:  # never the full number by accident in a log line
        return self.masked


def cnic_digits(text: str) -> str | None:
    """The 13 digits of the CNIC `text` is (typed any way `Cnic.parse` reads), or None."""
    try:
        return Cnic.parse(text).digits
    except InvalidCnic:
        return None


def mask_cnic(digits: str) -> str:
    """Mask a 13-digit CNIC string as `35202-*******-1`."""
    return f"{digits[:5]}-*******-{digits[-1]}"


def find_cnic_like(text: str) -> str | None:
    """The first run of 13+ digits (with separators) in normalised text, if any."""
    match = _CNIC_IN_TEXT.search(text)
    return match.group(0) if match else None


class InvalidPhone(ValueError):
    """The text is not a valid phone number."""


def _pakistani_patterns() -> tuple[re.Pattern[str], re.Pattern[str], frozenset[int]]:
    """phonenumbers' own patterns for Pakistan's numbers and its mobiles, and the mobiles'
    lengths (its metadata, not ours)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("PK")
    numbers = metadata.general_desc if metadata else None
    mobiles = metadata.mobile if metadata else None
    if not (numbers and mobiles and numbers.national_number_pattern):
        raise RuntimeError("phonenumbers has no metadata for Pakistan")
    return (
        re.compile(f"(?:{numbers.national_number_pattern})"),
        re.compile(f"(?:{mobiles.national_number_pattern})"),
        frozenset(mobiles.possible_length or ()),
    )


_PK_NUMBER, _PK_MOBILE, _PK_MOBILE_LENGTHS = _pakistani_patterns()


def _pakistani_mobile_e164(raw: str) -> bool:
    """True when `raw` is already a valid Pakistani mobile number in E.164 (`+923…`), by the
    patterns `phonenumbers.is_valid_number` itself checks it against: what gateways send."""
    national = raw[3:]
    return (
        raw.startswith("+92")
        and national.isascii()
        and national.isdigit()
        and len(national) in _PK_MOBILE_LENGTHS
        and _PK_NUMBER.fullmatch(national) is not None
        and _PK_MOBILE.fullmatch(national) is not None
    )


@lru_cache(maxsize=8192)
def normalise_phone(text: str, *, region: str = "PK") -> str:
    """E.164 form of a phone number written nationally (`03…`), as `0092…`, or `whatsapp:+92…`.

    Every message's sender goes through it, and a person in a surge sends again within seconds:
    the latest 8,192 answers are kept (1.7 MB per worker; an invalid number raises each time).
    A Pakistani mobile already in E.164, as Twilio and USSD gateways send it, is checked against
    phonenumbers' patterns directly, without parsing it (a twentieth of an SMS's CPU)."""
    raw = normalise_text(text)
    if raw.lower().startswith("whatsapp:"):
        raw = raw.split(":", 1)[1]
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    elif raw and raw[0].isdigit() and not raw.startswith("0") and len(raw) > 10:
        raw = "+" + raw  # Telegram contacts arrive as 923001234567, without the plus
    if _pakistani_mobile_e164(raw):
        return raw
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(text) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(text)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_pakistani_mobile(e164: str) -> bool:
    """True for a valid Pakistani mobile number in E.164."""
    try:
        number = phonenumbers.parse(e164, "PK")
    except phonenumbers.NumberParseException:
        return False
    return (
        number.country_code == 92
        and phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    )


def mask_phone(e164: str) -> str:
    """`+92300****567`: country and operator prefix plus the last three digits."""
    if len(e164) < 8:
        return "*" * len(e164)
    return f"{e164[:6]}****{e164[-3:]}"


def keyed_digest(secret: bytes, *parts: str) -> str:
    """A keyed hash that stands for an identity (a phone, a CNIC, a chat address) in keys and
    state kept outside the database: HMAC-SHA256 of the parts joined by NUL under the service's
    secret, truncated to 128 bits. A plain hash of a 13-digit CNIC or a phone number could be
    brute-forced; a keyed one cannot without the secret."""
    message = "\x00".join(parts).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]
