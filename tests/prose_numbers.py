"""The results a piece of prose quotes, and whether a text shows them.

Shared by the notebook prose check (``test_notebooks.py``: quotes against the committed
outputs) and the README check (``test_readme_results.py``: quotes against the result
files they cite). A quoted result is a decimal number ("0.348"; a minus sign written
against it is part of it), a percentage ("99%") or a count ("9 of 10", also "of the" and
"of these"); whole numbers on their own are left out (sizes, seeds, years).
"""

import re
from decimal import Decimal, InvalidOperation

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?")
_WHOLE = r"\d+(?:,\d{3})*"  # 1,322: a comma only before three digits
_QUOTED = re.compile(
    rf"(?<![\w.])({_WHOLE} of (?:the |these )?{_WHOLE}|\d+(?:\.\d+)?%|-?{_WHOLE}\.\d+)(?![\w.]\w)"
)


def quoted_results(markdown):
    """The results a markdown text quotes, leaving out code spans and link targets."""
    text = re.sub(r"`[^`]*`", " ", markdown)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return _QUOTED.findall(re.sub(r"\s+", " ", text))


def unshown(quotes, text):
    """The quotes that ``text`` does not show: a count as "N of M", a percentage as
    written, a decimal as any number of ``text`` that rounds to it (a tie either way: a
    shown 0.6545 may be 0.65448, quoted as 0.654); a decimal quoted without a sign
    ("behind by 0.0021") may be shown with one ("-0.0021")."""
    text = re.sub(r"\s+", " ", text)
    numbers = [m[0].replace(",", "") for m in NUMBER.finditer(text)]
    missing = []
    for quote in quotes:
        if " of " in quote:
            count, total = re.findall(_WHOLE, quote)
            ok = re.search(rf"(?<![\d.]){count} of {total}(?!\d)", text) is not None
        elif quote.endswith("%"):
            ok = re.search(rf"(?<![\d.]){re.escape(quote)}", text) is not None
        else:
            ok = _shown_to_precision(quote.replace(",", ""), numbers)
        if not ok:
            missing.append(quote)
    return missing


def _shown_to_precision(quote, numbers):
    step = Decimal(1).scaleb(Decimal(quote).as_tuple().exponent)
    for number in numbers:
        try:
            shown = Decimal(number) if quote.startswith("-") else abs(Decimal(number))
            if abs(shown - Decimal(quote)) <= step / 2:
                return True
        except InvalidOperation:
            continue
    return False
