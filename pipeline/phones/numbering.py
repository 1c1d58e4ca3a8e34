"""Plainly written phone numbers to E.164, read from phonenumbers' own metadata without its general parser.

`phonenumbers.parse` reads anything (tel: URIs, extensions, letters, full-width digits) and costs about
35 µs a number with its validity check. A number a customer types is nearly always plain: a leading +
or none, then digits, spaces, dashes, dots and brackets. For those the answer depends only on the
digits and the numbering plans, so `plain_e164` takes the same steps as phonenumbers over the same
metadata, each step named after the function it mirrors, at an eighth of the cost. Anything else
raises `NotPlain` and goes to phonenumbers itself. tests/audience/test_phones.py holds the two to
the same answer on generated numbers of every region: the metadata is read from the installed
phonenumbers, and the steps are those of its parse in 9.0, so an upgrade that changes them fails there.
"""

import re
from dataclasses import dataclass
from functools import cache

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

PLAIN = re.compile(r"(\+?)([0-9(][0-9 ().-]*[0-9])")
SEPARATORS = str.maketrans("", "", " ().-")
MIN_DIGITS, MAX_DIGITS = 4, 17  # outside these, phonenumbers' own length errors decide
MIN_NSN = 2  # phonenumbers' shortest national number
# phonenumbers._number_type_helper's order; any match makes a number valid
NUMBER_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


class NotPlain(Exception):
    """The number needs phonenumbers' general parser: an IDD prefix, letters, an extension..."""


@dataclass(frozen=True)
class Desc:
    """A PhoneNumberDesc: the lengths it allows (none listed: any) and its full-match pattern."""

    lengths: frozenset[int]
    pattern: str

    @classmethod
    def of(cls, desc: PhoneNumberDesc | None) -> "Desc | None":
        if desc is None or not desc.national_number_pattern:
            return None
        return cls(frozenset(desc.possible_length), desc.national_number_pattern)

    def allows(self, length: int) -> bool:
        return not self.lengths or length in self.lengths


@cache
def _any_of(descs: tuple[Desc, ...]) -> re.Pattern[str] | None:
    """One pattern that fully matches what any of `descs` fully matches; compiled once for the same descs."""
    return re.compile("|".join(f"(?:{desc.pattern})" for desc in descs)) if descs else None


@dataclass(frozen=True)
class Plan:
    """One region's numbering plan, compiled once."""

    country_code: int
    general: Desc | None
    general_pattern: re.Pattern[str] | None
    # phonenumbers._is_number_matching_desc for every number type at once: by length, one pattern
    # joining the types that allow it; any match makes the number valid
    types_by_length: dict[int, re.Pattern[str] | None]
    lengths: tuple[int, ...]  # the general description's, in metadata order
    local_lengths: frozenset[int]
    national_prefix: re.Pattern[str] | None
    transform: str | None
    idd: re.Pattern[str] | None
    leading_digits: re.Pattern[str] | None

    @classmethod
    def of(cls, meta: PhoneMetadata) -> "Plan":
        # with the same pattern, mobile never matches where fixed_line did not: phonenumbers skips it
        names = NUMBER_TYPES[:-1] if meta.same_mobile_and_fixed_line_pattern else NUMBER_TYPES
        types = [desc for desc in (Desc.of(getattr(meta, name)) for name in names) if desc is not None]
        general = Desc.of(meta.general_desc)
        return cls(
            country_code=meta.country_code,
            general=general,
            general_pattern=_any_of((general,) if general else ()),
            types_by_length={
                length: _any_of(tuple(desc for desc in types if desc.allows(length)))
                for length in range(MAX_DIGITS + 1)
            },
            lengths=tuple(meta.general_desc.possible_length),
            local_lengths=frozenset(meta.general_desc.possible_length_local_only),
            national_prefix=_compiled(meta.national_prefix_for_parsing),
            transform=meta.national_prefix_transform_rule or None,
            idd=_compiled(meta.international_prefix),
            leading_digits=_compiled(meta.leading_digits),
        )

    def viable(self, number: str) -> bool:
        """phonenumbers._match_national_number against the general description."""
        return self.general_pattern is not None and self.general_pattern.fullmatch(number) is not None

    def valid(self, nsn: str) -> bool:
        """phonenumbers._number_type_helper(nsn) != UNKNOWN."""
        if self.general is None or not self.general.allows(len(nsn)) or not self.viable(nsn):
            return False
        types = self.types_by_length.get(len(nsn))
        return types is not None and types.fullmatch(nsn) is not None

    def length_check(self, number: str) -> str:
        """phonenumbers._test_number_length for an unknown type, as the name of its ValidationResult."""
        length = len(number)
        if length in self.local_lengths:
            return "local_only"
        if length == self.lengths[0]:
            return "possible"
        if length < self.lengths[0]:
            return "too_short"
        if length > self.lengths[-1]:
            return "too_long"
        return "possible" if length in self.lengths[1:] else "invalid_length"

    def strip_national_prefix(self, number: str) -> str:
        """phonenumbers._maybe_strip_national_prefix_carrier_code, without the carrier code."""
        if not number or self.national_prefix is None:
            return number
        match = self.national_prefix.match(number)
        if match is None:
            return number
        if self.transform is None or match.groups()[-1] is None:
            stripped = number[match.end() :]
        else:
            stripped = self.national_prefix.sub(self.transform, number, count=1)
        if self.viable(number) and not self.viable(stripped):
            return number
        return stripped


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


@cache
def _plan(region: str) -> Plan | None:
    meta = PhoneMetadata.metadata_for_region(region, None)
    return None if meta is None else Plan.of(meta)


def _main_plan(country_code: int) -> Plan:
    """The plan of the calling code's main region (phonenumbers.region_code_for_country_code)."""
    region = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[country_code][0]
    plan = _plan(region) if region != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY else None
    if plan is None:
        raise NotPlain(f"calling code {country_code} has no geographic plan")
    return plan


def _valid(country_code: int, nsn: str) -> bool:
    """phonenumbers.is_valid_number: valid in the region it belongs to (region_code_for_number)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[country_code]
    if len(regions) == 1:
        plan = _plan(regions[0])
        return plan is not None and plan.valid(nsn)
    for region in regions:
        plan = _plan(region)
        if plan is None:
            continue
        if plan.leading_digits is not None:
            if plan.leading_digits.match(nsn):
                return plan.valid(nsn)
        elif plan.valid(nsn):
            return True
    return False


def _split_country_code(digits: str) -> tuple[int, str]:
    """phonenumbers._extract_country_code, for digits after a +."""
    if digits[0] != "0":
        for end in (1, 2, 3):
            if int(digits[:end]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                return int(digits[:end]), digits[end:]
    raise NotPlain("no known calling code after the +")


def _national_number(digits: str, home: Plan) -> tuple[int, str, Plan]:
    """phonenumbers._maybe_extract_country_code for digits without a +, read in the home region."""
    if home.idd is not None and home.idd.match(digits):
        raise NotPlain("starts with the region's international prefix")
    code = str(home.country_code)
    if digits.startswith(code):
        without_code = home.strip_national_prefix(digits[len(code) :])
        if (not home.viable(digits) and home.viable(without_code)) or home.length_check(digits) == "too_long":
            return home.country_code, without_code, _main_plan(home.country_code)
    return home.country_code, digits, home


def plain_e164(phone: str, region: str | None) -> str | None:
    """What phonenumbers' parse and is_valid_number make of a plain number: E.164, or None when invalid.

    Raises NotPlain for a number that is not plainly written, which phonenumbers must read.
    """
    shape = PLAIN.fullmatch(phone)
    if shape is None:
        raise NotPlain("not digits with spaces, dashes, dots and brackets")
    digits = shape[2].translate(SEPARATORS)
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise NotPlain("too few or too many digits")
    if shape[1]:
        country_code, nsn = _split_country_code(digits)
        plan = _main_plan(country_code)
    else:
        if region is None or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            return None  # phonenumbers: missing or invalid default region
        home = _plan(region.upper())
        assert home is not None  # a supported region has metadata
        country_code, nsn, plan = _national_number(digits, home)
    if len(nsn) < MIN_NSN:
        return None  # phonenumbers: too short to be a phone number
    stripped = plan.strip_national_prefix(nsn)
    if plan.length_check(stripped) not in ("too_short", "local_only", "invalid_length"):
        nsn = stripped
    if not MIN_NSN <= len(nsn) <= MAX_DIGITS:
        return None
    return f"+{country_code}{nsn}" if _valid(country_code, nsn) else None
