"""The match decision of one similarity score: per model pack and per face-size band, with an uncertain band.

A threshold published on mostly Western benchmarks does not carry over to every population or to
small faces (docs/face-accuracy.md). So each (pack, band) has two thresholds:

- score >= ``upper``: ``match`` (the same person);
- score <  ``lower``: ``mismatch`` (not the same person);
- in between: ``uncertain``: face-pay asks for another capture or falls back to another payment,
  the cross-check refers the person to the inspector ("cannot tell") instead of accusing or clearing.

Bands are by face width in pixels, as the detector reports it: ``terminal`` close-ups (>= 150 px),
``counter`` cameras (60-150 px), ``far`` (< 60 px). The thresholds come from settings
(``match_thresholds``, per pack name, per band); ``dualcheck calibrate`` recommends them from the
deployment's own population. Pure functions: no models, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from kernel.settings import FACE_BANDS

MATCH, MISMATCH, UNCERTAIN = "match", "mismatch", "uncertain"
TERMINAL, COUNTER, FAR = "terminal", "counter", "far"
BANDS = FACE_BANDS  # (TERMINAL, COUNTER, FAR)
TERMINAL_MIN_PX, COUNTER_MIN_PX = 150.0, 60.0


def band_of(face_px: float) -> str:
    """The size band of a face ``face_px`` wide."""
    if face_px >= TERMINAL_MIN_PX:
        return TERMINAL
    return COUNTER if face_px >= COUNTER_MIN_PX else FAR


@dataclass(frozen=True)
class Verdict:
    decision: str  # match | mismatch | uncertain
    score: float
    band: str
    lower: float
    upper: float

    @property
    def reason(self) -> str:
        if self.decision == MATCH:
            return f"similarity {self.score:.3f} ≥ threshold {self.upper:.3f} ({self.band} band)"
        if self.decision == MISMATCH:
            return f"similarity {self.score:.3f} < threshold {self.lower:.3f} ({self.band} band)"
        return (f"similarity {self.score:.3f} between {self.lower:.3f} and {self.upper:.3f} ({self.band} band): "
                "cannot tell; take another capture")

    def to_dict(self) -> dict:
        return {"band": self.band, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True)
class Thresholds:
    """The (lower, upper) thresholds of one pack, per band."""
    pack: str
    bands: dict[str, tuple[float, float]]

    @classmethod
    def for_pack(cls, table: dict[str, dict[str, tuple[float, float]]], pack: str,
                 single: float | None, default: float) -> "Thresholds":
        """``table`` is settings.match_thresholds; ``pack`` the pack's name (a directory pack by its last
        path part). ``single`` (settings.match_threshold), when set, replaces the table: one threshold for
        every band, no uncertain band. Bands the table does not name use the recogniser's published
        ``default`` for both thresholds."""
        name = pack.rstrip("/").rsplit("/", 1)[-1]
        given = {} if single is not None else (table.get(pack) or table.get(name) or {})
        flat = float(single if single is not None else default)
        bands = {b: tuple(float(x) for x in given.get(b, (flat, flat))) for b in BANDS}
        return cls(name, bands)

    @classmethod
    def of(cls, settings, pipeline) -> "Thresholds":
        """The thresholds of ``pipeline``'s pack under ``settings``."""
        return cls.for_pack(settings.match_thresholds, pipeline.pack, settings.match_threshold,
                            pipeline.recognizer.default_threshold)

    def judge(self, score: float, face_px: float) -> Verdict:
        band = band_of(face_px)
        lo, up = self.bands[band]
        s = float(score)
        decision = MATCH if s >= up else MISMATCH if s < lo else UNCERTAIN
        return Verdict(decision, s, band, lo, up)


# --- error rates and calibration ---------------------------------------------------------------

@dataclass(frozen=True)
class Rate:
    errors: int
    n: int
    low: float  # 95 % confidence interval (Clopper-Pearson, exact)
    high: float

    @property
    def value(self) -> float:
        return self.errors / self.n if self.n else float("nan")

    def __str__(self) -> str:
        if not self.n:
            return "n/a (no pairs)"
        return f"{self.errors}/{self.n} = {self.value:.2%} [95% CI {self.low:.2%}-{self.high:.2%}]"


def rate(errors: int, n: int, confidence: float = 0.95) -> Rate:
    if n == 0:
        return Rate(0, 0, 0.0, 1.0)
    ci = binomtest(int(errors), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return Rate(int(errors), int(n), float(ci.low), float(ci.high))


@dataclass(frozen=True)
class Recommendation:
    band: str
    lower: float
    upper: float
    far: Rate  # impostors at or above ``upper`` (called a match)
    frr: Rate  # genuine below ``upper`` (not called a match: uncertain or mismatch)
    false_mismatch: Rate  # genuine below ``lower`` (called a mismatch: in the cross-check, an accusation)
    uncertain_genuine: Rate
    uncertain_impostor: Rate
    target_far: float
    meets_target: bool  # the upper confidence bound of FAR is within the target

    def to_dict(self) -> dict:
        def r(x: Rate) -> dict:
            return {"errors": x.errors, "n": x.n, "rate": None if not x.n else round(x.value, 6),
                    "ci95": [round(x.low, 6), round(x.high, 6)]}
        return {"band": self.band, "lower": round(self.lower, 4), "upper": round(self.upper, 4),
                "far": r(self.far), "frr": r(self.frr), "false_mismatch": r(self.false_mismatch),
                "uncertain_genuine": r(self.uncertain_genuine), "uncertain_impostor": r(self.uncertain_impostor),
                "target_far": self.target_far, "meets_target": self.meets_target}


def recommend(genuine, impostor, *, band: str, target_far: float, target_frr: float = 0.01,
              confidence: float = 0.95, fallback_upper: float | None = None) -> Recommendation:
    """Thresholds for one band from labelled scores.

    ``upper``: the lowest threshold whose FAR's upper confidence bound is <= ``target_far``; where no
    threshold reaches that (too few impostor pairs to show so small a rate), just above the highest
    impostor score and never below ``fallback_upper`` (the threshold in force): a small sample never
    loosens a threshold. ``lower``: the highest threshold that calls at most ``target_frr`` of genuine pairs
    a mismatch (clamped to ``upper``): what lies between goes to the uncertain band."""
    g = np.sort(np.asarray(genuine, np.float64))
    im = np.sort(np.asarray(impostor, np.float64))
    if g.size == 0 or im.size == 0:
        raise ValueError(f"{band}: need both genuine and impostor pairs (have {g.size} and {im.size})")
    # candidate uppers: just above each impostor score (FAR steps down there), ascending
    eps = 1e-4
    upper = None
    for t in np.unique(np.concatenate([im + eps, [im[-1] + eps]])):
        k = int(np.sum(im >= t))
        if rate(k, im.size, confidence).high <= target_far:
            upper = float(t)
            break
    meets = upper is not None
    if upper is None:
        upper = float(max(im[-1] + eps, fallback_upper if fallback_upper is not None else -1.0))
    # lower: the target_frr quantile of genuine scores, never above upper
    lower = float(min(upper, np.quantile(g, target_frr, method="lower")))
    far = rate(int(np.sum(im >= upper)), im.size, confidence)
    return Recommendation(
        band=band, lower=round(lower, 4), upper=round(upper, 4), far=far,
        frr=rate(int(np.sum(g < upper)), g.size, confidence),
        false_mismatch=rate(int(np.sum(g < lower)), g.size, confidence),
        uncertain_genuine=rate(int(np.sum((g >= lower) & (g < upper))), g.size, confidence),
        uncertain_impostor=rate(int(np.sum((im >= lower) & (im < upper))), im.size, confidence),
        target_far=target_far, meets_target=meets and far.high <= target_far)

