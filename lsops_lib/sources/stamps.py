"""The stamp pm2 writes at the start of each log line, read with its moment.js
`log_date_format` (`[logs] date_format`): `stamp_regex` compiles a format (ValueError for a
token lsops does not read), `parse_stamp` turns a match into a UTC instant. Standard
library only: the settings check a format without importing the log reader's stack."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_MONTHS = "january february march april may june july august september october november december"
_MONTH_OF = {name[:k]: n for n, name in enumerate(_MONTHS.split(), 1) for k in (3, len(name))}
# the moment.js tokens read in a stamp, the pattern of each; `Do`, `DDD`, `Q`, `w`, `k`,
# `E`... are tokens too, refused (ValueError) rather than taken as literal text
_TOKENS = [
    ("YYYY", r"(?P<Y>\d{4})"),
    ("YY", r"(?P<y>\d{2})"),
    ("MMMM", r"(?P<N>[A-Za-z]{3,9})"),
    ("MMM", r"(?P<N>[A-Za-z]{3})"),
    ("MM", r"(?P<M>\d{2})"),
    ("M", r"(?P<M>\d{1,2})"),
    ("DD", r"(?P<D>\d{2})"),
    ("D", r"(?P<D>\d{1,2})"),
    ("dddd", r"[A-Za-z]+"),  # the weekday: not needed for the instant
    ("ddd", r"[A-Za-z]{3}"),
    ("dd", r"[A-Za-z]{2}"),
    ("d", r"\d"),
    ("HH", r"(?P<h>\d{2})"),
    ("H", r"(?P<h>\d{1,2})"),
    ("hh", r"(?P<h>\d{2})"),
    ("h", r"(?P<h>\d{1,2})"),
    ("A", r"(?P<p>[AaPp][Mm])"),
    ("a", r"(?P<p>[AaPp][Mm])"),
    ("mm", r"(?P<m>\d{2})"),
    ("m", r"(?P<m>\d{1,2})"),
    ("ss", r"(?P<s>\d{2})"),
    ("s", r"(?P<s>\d{1,2})"),
    *((f"{'S' * n}", rf"(?P<f>\d{{{n}}})") for n in range(9, 0, -1)),
    ("ZZ", r"(?P<z>[+-]\d{4}|Z)"),
    ("Z", r"(?P<z>[+-]\d{2}:\d{2}|Z)"),
    ("X", r"(?P<X>\d+(?:\.\d+)?)"),
    ("x", r"(?P<x>\d+)"),
]
# what moment.js reads as one token at a position (its formatting regex); `[...]` is literal
_MOMENT = re.compile(
    r"\[[^\[]*\]|\\.|Mo|M{1,4}|DDDo|Do|D{1,4}|do|d{1,4}|w[ow]?|W[oW]?|Qo?|N{1,5}|Y{1,6}|yo|y{1,4}"
    r"|g{2,5}|G{2,5}|[eEaA]|hh?|HH?|kk?|mm?|ss?|S{1,9}|[xX]|zz?|ZZ?|LTS|LT|L{1,4}|l{1,4}"
)


def stamp_regex(date_format: str) -> re.Pattern[str]:
    """pm2's `log_date_format` (moment.js: YYYY YY MMMM MMM MM M DD D dddd ddd dd d HH H hh h
    A a mm m ss s S..SSSSSSSSS Z ZZ X x, `[literal]`) as the regex of a line's prefix
    `STAMP: `. ValueError naming a moment.js token it does not read (`Do`, `Q`, `DDDD`...),
    or when the format has no date (year, month and day; or X, x)."""
    patterns = dict(_TOKENS)
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(date_format):
        token = _MOMENT.match(date_format, i)
        if token is None:
            out.append(re.escape(date_format[i]))
            i += 1
            continue
        text = token.group()
        i = token.end()
        if text.startswith("["):
            out.append(re.escape(text[1:-1]))
        elif text.startswith("\\"):
            out.append(re.escape(text[1:]))
        elif text in patterns:
            pattern = patterns[text]
            group = re.match(r"\(\?P<(\w)>", pattern)
            if group is not None:  # a field given twice: the first one counts
                if group[1] in seen:
                    pattern = "(?:" + pattern[group.end() :]
                seen.add(group[1])
            out.append(pattern)
        else:
            raise ValueError(f"the moment.js token {text} is not supported")
    if not ({"X", "x"} & seen or ({"Y", "y"} & seen and {"M", "N"} & seen and "D" in seen)):
        raise ValueError("it has no date (YYYY or YY, MM or MMM, DD; or X, x)")
    return re.compile("^" + "".join(out) + r": ?")


def parse_stamp(match: re.Match[str]) -> datetime | None:
    g = match.groupdict()
    try:
        tz: timezone = UTC
        zone = g.get("z")
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        if g.get("X"):
            return datetime.fromtimestamp(float(g["X"]), UTC)
        if g.get("x"):
            return datetime.fromtimestamp(int(g["x"]) / 1000, UTC)
        year = int(g["Y"]) if g.get("Y") else None
        if year is None and g.get("y"):
            year = int(g["y"]) + (2000 if int(g["y"]) <= 68 else 1900)  # as moment reads YY
        month = _MONTH_OF[g["N"].lower()] if g.get("N") else int(g.get("M") or 1)
        hour = int(g.get("h") or 0)
        if g.get("p"):  # 12-hour clock: 12 AM is 0 h, 12 PM is 12 h
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if g["p"].lower() == "pm" else 0)
        return datetime(
            year,  # type: ignore[arg-type] - None: TypeError below
            month,
            int(g.get("D") or 1),
            hour,
            int(g.get("m") or 0),
            int(g.get("s") or 0),
            int((g.get("f") or "0").ljust(6, "0")[:6]),
            tzinfo=tz,
        ).astimezone(UTC)
    except (TypeError, ValueError, KeyError, OverflowError, OSError):
        return None
