"""Random transcriptions for synthetic scene text: sign words, pseudo-words, numbers.

Only printable ASCII (what OpenCV's Hershey fonts draw).  A transcription is never
``###`` or ``*`` (both mean "don't care" to ICDAR-style metrics) and some contain
commas, as real ICDAR2015 transcriptions do.
"""
from __future__ import annotations

import numpy as np

SIGN_WORDS = (
    "OPEN", "EXIT", "SALE", "HOTEL", "CAFE", "PARKING", "STOP", "BANK", "PHARMACY", "TAXI",
    "STREET", "ROAD", "MARKET", "FOOD", "PIZZA", "COFFEE", "BAR", "SHOP", "CITY", "PARK",
    "STATION", "CENTRE", "PLAZA", "MALL", "NEW", "BEST", "FREE", "WELCOME", "TOWER", "GATE",
    "LEVEL", "FLOOR", "ENTRANCE", "SERVICE", "TICKETS", "BUS", "TRAIN", "METRO", "NORTH",
    "SOUTH", "EAST", "WEST", "FASHION", "BEAUTY", "KIDS", "SPORTS", "MUSIC", "BOOKS",
    "TRAVEL", "GARDEN", "BAKERY", "DENTAL", "CLINIC", "OFFICE", "TOILET", "LIFT", "PUSH",
    "PULL", "ONLY", "DAILY", "HOURS", "MENU", "DRINKS", "FRESH", "SUSHI", "NOODLE", "TEA",
    "JUICE", "OUTLET", "STORE", "BOUTIQUE", "ART", "GALLERY", "SALON", "SPA", "HAIR",
)
_ONSETS = ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
           "br", "ch", "cl", "dr", "gr", "pl", "sh", "st", "th", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ee", "oo", "ou")
_CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "ng", "ck", "st")
_PUNCT_WRAP = ("{},", "{}.", "{}!", "({})", "{}:", "{}'s", "{}-{}", "{},{}")
FORBIDDEN = ("###", "*")


def _case(word: str, rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.5:
        return word.upper()
    if r < 0.8:
        return word.capitalize()
    return word.lower()


def pseudo_word(rng: np.random.Generator) -> str:
    """A pronounceable lowercase non-word of 2-3 syllables."""
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        parts.append(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                     + _CODAS[rng.integers(len(_CODAS))])
    word = "".join(parts)
    return word if len(word) >= 2 else word + "a"


def number_text(rng: np.random.Generator) -> str:
    """Prices, counts (some with a thousands comma), phone numbers, times, years."""
    kind = rng.integers(6)
    if kind == 0:
        return str(int(rng.integers(10, 1000)))
    if kind == 1:
        return f"{int(rng.integers(1, 100))},{int(rng.integers(0, 1000)):03d}"
    if kind == 2:
        return f"${int(rng.integers(1, 100))}.{int(rng.integers(0, 100)):02d}"
    if kind == 3:
        return f"{int(rng.integers(100, 1000))}-{int(rng.integers(1000, 10000))}"
    if kind == 4:
        return f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
    return str(int(rng.integers(1950, 2030)))


def random_text(rng: np.random.Generator) -> str:
    """One word-like transcription (at least 2 characters, no spaces)."""
    r = rng.random()
    if r < 0.3:
        text = _case(SIGN_WORDS[rng.integers(len(SIGN_WORDS))], rng)
    elif r < 0.65:
        text = _case(pseudo_word(rng), rng)
    elif r < 0.9:
        text = number_text(rng)
    else:
        pattern = _PUNCT_WRAP[rng.integers(len(_PUNCT_WRAP))]
        words = [_case(pseudo_word(rng)[:5], rng) for _ in range(pattern.count("{}"))]
        text = pattern.format(*words)
    assert text not in FORBIDDEN and len(text) >= 2 and " " not in text
    return text
