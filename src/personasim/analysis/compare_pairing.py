"""Pairing of `compare`: the same learner's answer to the same question under A and under B."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from personasim.errors import PersonasimError

KEYS = ["persona_id", "sample", "criterion_id"]  # plus "grader" when both sides have it
Pairing = Literal["content", "id"]
PAIRINGS: tuple[str, ...] = ("content", "id")
NAMED = 5  # at most this many personas or criteria named in one warning


class CompareError(PersonasimError):
    """The two sides cannot be paired (missing columns, duplicate keys, differing personas, nothing in common)."""


def _named(items: list[str]) -> str:
    shown = ", ".join(items[:NAMED])
    return shown + (f" and {len(items) - NAMED} more" if len(items) > NAMED else "")


@dataclass
class Paired:
    pairs: pd.DataFrame
    unmatched_a: int
    unmatched_b: int
    pairing: str
    warnings: list[str] = field(default_factory=list)


def pair(df_a: pd.DataFrame, df_b: pd.DataFrame, pairing: Pairing = "content", label_a: str = "A",
         label_b: str = "B") -> Paired:  # fmt: skip
    """Pair the graded rows of A and B: on (persona_id, sample, criterion_text[, grader]) after checking
    that every persona on both sides has the same file (`persona_hash`), refusing otherwise; with
    `pairing="id"` on (persona_id, sample, criterion_id[, grader]), warning about what differs."""
    if pairing not in PAIRINGS:
        raise CompareError(f"pairing must be one of {', '.join(PAIRINGS)}, not {pairing!r}")
    a, b = _graded(df_a, label_a), _graded(df_b, label_b)
    grader = ["grader"] if "grader" in a.columns and "grader" in b.columns else []
    warnings: list[str] = []
    differ = _persona_files_differ(a, b, label_a, label_b)
    if differ and pairing == "content":
        raise CompareError(
            f"persona files differ between {label_a} and {label_b}: {_named(differ)}. Criterion ids are positions "
            "in a persona (gap-02 is its second gap), so an edited persona pairs different questions, and its "
            "learner is not the same one; run both sides on the same persona files, or pair by criterion id "
            "anyway with --by-id"
        )
    if differ:
        warnings.append(f"Persona files differ between {label_a} and {label_b} ({_named(differ)}): paired by "
                        "criterion id anyway (--by-id).")  # fmt: skip
    if pairing == "content" and not (_has_text(a) and _has_text(b)):
        warnings.append("No criterion text on one side: rows paired by persona, sample and criterion id.")
        pairing = "id"
    for frame, side in ((a, label_a), (b, label_b)):
        _no_duplicates(frame, [*KEYS, *grader], side)
        # Two criteria of one persona with the same text pair in criterion id order.
        frame["text_rank"] = (
            frame.sort_values("criterion_id")
            .groupby(["persona_id", "sample", "criterion_text", *grader], dropna=False)
            .cumcount()
        )
    content = ["criterion_text", "text_rank"]
    keys = ["persona_id", "sample", *(content if pairing == "content" else ["criterion_id"]), *grader]
    other = "criterion_id" if pairing == "content" else "criterion_text"
    pairs = a[[*keys, other, "score_norm", "lens", "persona_title"]].merge(
        b[[*keys, other, "score_norm"]], on=keys, how="inner", suffixes=("_a", "_b")
    )
    if pairing == "content":
        same = pairs["criterion_id_a"] == pairs["criterion_id_b"]
        pairs["criterion_id"] = pairs["criterion_id_a"]
        pairs["criterion_key"] = pairs["criterion_id_a"].where(
            same, pairs["criterion_id_a"] + " (B: " + pairs["criterion_id_b"] + ")"
        )
        warnings += _text_changed(a, b, pairs, keys, label_a, label_b)
    else:
        pairs["criterion_text"] = pairs["criterion_text_a"]
        pairs["criterion_key"] = pairs["criterion_id"]
        changed = pairs[pairs["criterion_text_a"] != pairs["criterion_text_b"]]
        if len(changed):
            names = sorted(set(changed["persona_id"].astype(str) + "/" + changed["criterion_id"].astype(str)))
            warnings.append(f"Criterion text differs between {label_a} and {label_b} for {_named(names)}: paired "
                            "by criterion id anyway (--by-id).")  # fmt: skip
    pairs["diff"] = pairs["score_norm_b"] - pairs["score_norm_a"]
    pairs["unit"] = pairs["persona_id"].astype(str) + "#" + pairs["sample"].astype(str)
    return Paired(pairs, len(a) - len(pairs), len(b) - len(pairs), pairing, warnings)


def _graded(df: pd.DataFrame, side: str) -> pd.DataFrame:
    missing = [c for c in [*KEYS, "score_norm", "lens"] if c not in df.columns]
    if missing:
        raise CompareError(f"side {side} lacks column(s) {', '.join(missing)}")
    out = df[df["score_norm"].notna()].reset_index(drop=True)
    for column in ("criterion_text", "persona_title"):
        if column not in out.columns:
            out[column] = ""
    out["criterion_text"] = out["criterion_text"].fillna("").astype(str)
    out["criterion_id"] = out["criterion_id"].astype(str)
    out["score_norm"] = out["score_norm"].astype(float)
    return out


def _has_text(frame: pd.DataFrame) -> bool:
    return bool(len(frame)) and bool(frame["criterion_text"].str.strip().ne("").all())


def _no_duplicates(frame: pd.DataFrame, keys: list[str], side: str) -> None:
    dupes = frame.duplicated(keys)
    if dupes.any():
        first = frame.loc[dupes].iloc[0]
        where = "/".join(str(first[k]) for k in ("persona_id", "sample", "criterion_id"))
        raise CompareError(
            f"side {side} has more than one row for persona/sample/criterion {where}: does it hold several module "
            "versions? Pick one (compare_versions or --a/--b)"
        )


def _persona_files_differ(a: pd.DataFrame, b: pd.DataFrame, label_a: str, label_b: str) -> list[str]:
    """'p19 (hash 1a2b3c4d5e6f in A, 6f5e4d3c2b1a in B)' for each persona on both sides whose file differs."""
    if "persona_hash" not in a.columns or "persona_hash" not in b.columns:
        return []

    def hashes(frame: pd.DataFrame) -> dict[str, frozenset[str]]:
        known = frame.dropna(subset=["persona_hash"])
        return {str(p): frozenset(g.astype(str)) for p, g in known.groupby("persona_id")["persona_hash"]}

    ha, hb = hashes(a), hashes(b)
    return [
        f"{pid} (hash {'/'.join(h[:12] for h in sorted(ha[pid]))} in {label_a}, "
        f"{'/'.join(h[:12] for h in sorted(hb[pid]))} in {label_b})"
        for pid in sorted(ha.keys() & hb.keys())
        if ha[pid] != hb[pid]
    ]


def _text_changed(a: pd.DataFrame, b: pd.DataFrame, pairs: pd.DataFrame, keys: list[str], label_a: str,
                  label_b: str) -> list[str]:  # fmt: skip
    """Criteria left unpaired because their text differs between the sides (same persona and id)."""

    def unpaired(frame: pd.DataFrame) -> set[tuple[str, str]]:
        merged = frame[keys + ["criterion_id"]].merge(pairs[keys], on=keys, how="left", indicator=True)
        left = merged[merged["_merge"] == "left_only"]
        return set(zip(left["persona_id"].astype(str), left["criterion_id"].astype(str), strict=True))

    changed = sorted(unpaired(a) & unpaired(b))
    if not changed:
        return []
    names = [f"{p}/{c}" for p, c in changed]
    return [f"Criterion text differs between {label_a} and {label_b} for {_named(names)}: left out, not paired "
            "(--by-id pairs them anyway)."]  # fmt: skip
