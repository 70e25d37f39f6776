"""Classify your own structure files with every shipped classifier.

``python -m crystal_course.classify FILE [FILE ...] [--json]`` reads any structure
file ASE reads (CIF, POSCAR, extxyz, xyz, ...) and prints, for each shipped
classifier, the class it answers, its probability, its uncertainty (predictive
entropy under Monte Carlo dropout, in nats) and whether that uncertainty passes the
classifier's "unknown" threshold (chosen on validation data, recorded in its card).

The 2018 CNN (Chapter 3) needs a periodic cell: spglib puts it in the standard
orientation first. The orientation-free classifiers of Chapter 8 (powder pattern,
SOAP) also answer for a file without a cell, such as a nanoparticle.

Introduced in Chapter 8.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

SHIPPED = ("ziletti_cnn", "powder_cnn", "soap_network")
"""The classifiers the command line asks, in the order it prints them."""

NEEDS_CELL = (
    "needs a periodic cell: the 2018 pipeline first puts the cell in spglib's standard orientation"
)


@dataclass(frozen=True)
class Answer:
    """One classifier's answer for one structure.

    Attributes
    ----------
    name : str or None
        Class name (:data:`crystal_course.structures.CLASSES`); ``None`` if it cannot answer.
    probability : float or None
        Mean probability of that class over the Monte Carlo passes.
    uncertainty : float or None
        Predictive entropy, nats (0 certain, ``log 7`` = 1.95 uniform).
    unknown : bool or None
        Uncertainty above the classifier's threshold; ``None`` without a threshold.
    error : str or None
        Why the classifier cannot answer.
    information : float or None
        Mutual information between the answer and the dropout masks, nats: the part
        of the entropy that comes from the model's own doubt (the passes disagree),
        not from a crystal that sits between classes.
    """

    name: str | None
    probability: float | None
    uncertainty: float | None
    unknown: bool | None
    error: str | None = None
    information: float | None = None

    def as_json(self) -> dict:
        """The ``--json`` object of this answer."""
        out = {"class": self.name, "probability": self.probability,
               "uncertainty": self.uncertainty, "mutual_information": self.information,
               "unknown": self.unknown}  # fmt: skip
        if self.error:
            out["error"] = self.error
        return out


def read_structure(path: str | Path) -> Atoms:
    """Read one structure file (its last frame) and check that the course can classify it.

    Raises
    ------
    ValueError
        One line naming the file and what was expected: missing, empty,
        unreadable or of another format, no atoms, more than
        :data:`crystal_course.structures.MAX_ATOMS` atoms, or an element without
        form factors.

    Notes
    -----
    Introduced in Chapter 8.
    """
    import ase.io

    from crystal_course.structures import check_atoms

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (expected a structure file ASE reads)")
    try:
        atoms = ase.io.read(path)
    except Exception as error:  # ASE raises many kinds for a file it cannot parse
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(
            f"{path}: cannot read it as a structure ({reason}); expected a file ASE reads, "
            "e.g. CIF, POSCAR, extxyz or xyz"
        ) from None
    if isinstance(atoms, list):
        atoms = atoms[-1]
    try:
        check_atoms(atoms, "the structure", min_atoms=1 if is_periodic(atoms) else 2)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {' '.join(str(error).split())}") from None
    return atoms


def is_periodic(atoms: Atoms) -> bool:
    """A cell spglib can standardise: periodic along all three axes, of full rank."""
    return bool(atoms.pbc.all()) and atoms.cell.rank == 3


def _threshold(card: dict) -> float | None:
    unknown = card.get("unknown") or {}
    return unknown.get("threshold")


def answers(probability_samples: np.ndarray, threshold: float | None) -> list[Answer]:
    """Answers from ``(passes, N, n_classes)`` Monte Carlo samples and a threshold.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.structures import CLASSES
    from crystal_course.uncertainty import mutual_information, predictive_entropy

    mean = probability_samples.mean(axis=0)
    entropy = predictive_entropy(probability_samples)
    information = mutual_information(probability_samples)
    out = []
    for p, h, i in zip(mean, entropy, information, strict=True):
        best = int(p.argmax())
        unknown = None if threshold is None else bool(h > threshold)
        out.append(Answer(CLASSES[best], round(float(p[best]), 4), round(float(h), 4), unknown,
                          information=round(float(i), 4)))  # fmt: skip
    return out


def classify(structures, passes: int | None = None, n_atoms: int = 250,
             seed: int = 0) -> list[dict[str, Answer]]:  # fmt: skip
    """Every shipped classifier's answer for each structure.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        Periodic crystals or finite clusters, in any orientation.
    passes : int, optional
        Monte Carlo dropout passes; default each card's (the threshold was chosen
        with them).
    n_atoms : int, default 250
        Cluster size the classifiers were trained on.
    seed : int, default 0
        Seeds the dropout masks.

    Returns
    -------
    list of dict
        One ``{classifier: Answer}`` per structure, classifiers in :data:`SHIPPED` order.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course import invariant, models

    structures = list(structures)
    results: list[dict[str, Answer]] = [{} for _ in structures]
    if not structures:
        return results
    clusters = [invariant.cluster_of(atoms, n_atoms) for atoms in structures]
    soaps = invariant.soap(clusters)
    patterns = np.stack([invariant.pattern(c) for c in clusters])
    for name in SHIPPED:
        model, card = models.load_pretrained(name), models.model_card(name)
        n_passes = passes or card.get("unknown", {}).get("passes", invariant.MC_PASSES)
        if name == "ziletti_cnn":
            rows = [i for i, atoms in enumerate(structures) if is_periodic(atoms)]
            x = models.structure_fingerprints([structures[i] for i in rows], n_atoms)
        else:
            rows = list(range(len(structures)))
            x = invariant.classifier_input(name, patterns, soaps)
        if rows:
            samples = models.mc_dropout_samples(model, x, passes=n_passes, seed=seed)
            for i, answer in zip(rows, answers(samples, _threshold(card)), strict=True):
                results[i][name] = answer
        for i in set(range(len(structures))) - set(rows):
            results[i][name] = Answer(None, None, None, None, NEEDS_CELL)
    return [{name: r[name] for name in SHIPPED} for r in results]


def _table(path: str, result: dict[str, Answer]) -> str:
    lines = [path]
    for name, a in result.items():
        if a.error:
            lines.append(f"  {name:<13} cannot answer: {a.error}")
            continue
        flag = {True: "  UNKNOWN (past the threshold)", False: "", None: "  (no threshold)"}
        lines.append(f"  {name:<13} {a.name:<8} probability {a.probability:.3f}  "
                     f"entropy {a.uncertainty:.3f} nats (mutual information "
                     f"{a.information:.3f}){flag[a.unknown]}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Classify structure files with every shipped classifier (exit code 2 if any file fails)."""
    parser = argparse.ArgumentParser(prog="python -m crystal_course.classify",
                                     description=main.__doc__)  # fmt: skip
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="structure files ASE reads (CIF, POSCAR, extxyz, xyz)")  # fmt: skip
    parser.add_argument("--json", action="store_true",
                        help='a JSON list: {"file", "classifiers", "error"} per file')  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout masks")
    args = parser.parse_args(argv)
    read: list[tuple[str, Atoms]] = []
    errors: dict[str, str] = {}
    for file in args.files:
        try:
            read.append((file, read_structure(file)))
        except ValueError as error:
            errors[file] = str(error)
            print(f"classify: {error}", file=sys.stderr)
    results = dict(zip([f for f, _ in read], classify([a for _, a in read], seed=args.seed),
                       strict=True))  # fmt: skip
    if args.json:
        report = [{"file": f,
                   "classifiers": {k: a.as_json() for k, a in results.get(f, {}).items()},
                   "error": errors.get(f)} for f in args.files]  # fmt: skip
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(_table(f, results[f]) for f in args.files if f in results))
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
