"""Phone numbers to E.164: the one normalisation the raw data's erasure, the marts and the audience share.

`phonenumbers` is slow (about 28,000 numbers a second on one core), so a plainly written number is
read by `numbering` from the same metadata at about 200,000 a second. pipeline/warehouse/phones.py
normalises each distinct (number, region) pair once and caches it in state.duckdb across runs.
"""

import phonenumbers

from pipeline.phones.numbering import NotPlain, plain_e164


def to_e164(phone: str | None, region: str | None) -> str | None:
    """The number in E.164, or None when it is not a valid number.

    A number without a leading + is read in `region` (the customer's default address country).
    """
    if not phone:
        return None
    try:
        return plain_e164(phone, region)
    except NotPlain:
        pass
    try:
        parsed = phonenumbers.parse(phone, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    # What format_number(parsed, E164) returns for a valid number, without its dispatch: a fifth of the time
    return f"+{parsed.country_code}{phonenumbers.national_significant_number(parsed)}"
