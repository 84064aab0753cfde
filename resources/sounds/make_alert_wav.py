"""Writes alert.wav next to this file: a two-tone alert (high, low, high, low), about 0.75 s.

Run once after changing it (``python resources/sounds/make_alert_wav.py``); the WAV is committed.
Only the standard library: 22.05 kHz, 16-bit mono, short fades so the tones do not click.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 22050
TONES = ((988.0, 0.16), (0.0, 0.03), (740.0, 0.16), (0.0, 0.07)) * 2  # B5, F#5: clear, not shrill
VOLUME = 0.55
FADE_S = 0.008


def samples() -> list[int]:
    out: list[int] = []
    for freq, seconds in TONES:
        n = int(RATE * seconds)
        fade = int(RATE * FADE_S)
        for i in range(n):
            env = min(1.0, i / fade, (n - 1 - i) / fade) if freq else 0.0
            out.append(int(32767 * VOLUME * env * math.sin(2 * math.pi * freq * i / RATE)))
    return out


def main() -> None:
    path = Path(__file__).with_name("alert.wav")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples()))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
