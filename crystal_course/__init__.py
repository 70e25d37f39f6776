"""crystal_course: the helper package of the *crystal-course* book.

Deep-learning classification of crystal structures from simulated diffraction
images, after Ziletti et al., Nat. Commun. 9, 2775 (2018) and Tiong et al.,
npj Comput. Mater. 6, 196 (2020).

Every chapter of the book imports this package; each public function says in its
docstring which chapter introduces it. Modules are small and each holds one
concept:

``config``
    quick/full mode, run settings and the banner every chapter prints.
``diffraction``
    detector geometry, form factors, kinematic patterns and the 2D
    diffraction fingerprint (Chapter 1).
``structures``
    ``ase.Atoms`` validation, spglib symmetry, supercells and the eight
    prototypes (Chapters 1 and 2).
``checks``
    checkers for the exercises' solutions.
``cluster``
    running the dataset generators on local processes or a Dask cluster
    (appendix "Running at scale").
``notebooks``
    the book's tooling: Colab twins of the chapters, ``glue``, and ``show``,
    which fills this run's numbers into the student editions' text.
``markdown``
    MyST turned into the Markdown Jupyter and Colab render (the student editions).

Submodules are imported on demand, so ``import crystal_course`` stays cheap
(TensorFlow is never imported by it).
"""

from __future__ import annotations

__version__ = "0.2.0"  # set once: the Colab cells install tag v<version>

__all__ = ["__version__"]
