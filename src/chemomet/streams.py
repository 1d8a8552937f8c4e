"""Random streams keyed by patient index, so that results never depend on chunking or the number of workers.

Every random draw of chemomet comes from a root :class:`numpy.random.SeedSequence` (see :func:`root_seed`).
Patients are grouped in blocks of :data:`BLOCK`; block ``b`` has its own generator, spawned from the root with the
key ``b`` (:func:`block_generator`), and patient ``i`` always takes row ``i % BLOCK`` of block ``i // BLOCK``'s
draws (:func:`draws_at`). A sub-stream for a different purpose (CTC counts, trial event times) is the root's child
with its own key, so adding one never shifts another.
"""

from __future__ import annotations

import numpy as np

BLOCK = 1024
"""Patients per random-stream block (patient ``i`` draws from block ``i // BLOCK``)."""


def root_seed(rng: int | np.random.Generator | np.random.SeedSequence) -> np.random.SeedSequence:
    """The root seed sequence of a run.

    Parameters
    ----------
    rng : an integer seed, a :class:`numpy.random.Generator` (one integer is drawn from it) or a
        :class:`numpy.random.SeedSequence` (returned as it is).

    Returns
    -------
    numpy.random.SeedSequence

    Examples
    --------
    >>> root_seed(7).entropy
    7
    >>> s = np.random.SeedSequence(3)
    >>> root_seed(s) is s
    True
    """
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        return np.random.SeedSequence(int(rng.integers(0, 2**63)))
    return np.random.SeedSequence(int(rng))


def child(root: np.random.SeedSequence, key: int) -> np.random.SeedSequence:
    """The sub-stream ``key`` of ``root`` (a stream for another purpose, independent of the root's blocks).

    Examples
    --------
    >>> child(root_seed(1), 1).spawn_key
    (1,)
    """
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, key))


def block_generator(root: np.random.SeedSequence, block: int) -> np.random.Generator:
    """The random generator of one block of :data:`BLOCK` patients (keyed by block index).

    Examples
    --------
    >>> a = block_generator(root_seed(0), 2).random()
    >>> b = block_generator(root_seed(0), 2).random()
    >>> a == b
    True
    """
    return np.random.Generator(np.random.PCG64(child(root, block)))


def draws_at(root: np.random.SeedSequence, indices, n_normal: int, n_uniform: int):
    """Standard normals and uniforms for the patients with these indices.

    Patient ``i`` always gets row ``i % BLOCK`` of block ``i // BLOCK``'s stream, whichever other patients are
    asked for at the same time. Each block's generator first draws ``(BLOCK, n_normal)`` standard normals, then
    ``(BLOCK, n_uniform)`` uniforms.

    Parameters
    ----------
    root : the run's root seed sequence (:func:`root_seed`).
    indices : patient indices (any order, repeats allowed), shape ``(n,)``.
    n_normal, n_uniform : number of standard normals and of uniforms per patient.

    Returns
    -------
    z : numpy.ndarray, shape ``(n, n_normal)``
    u : numpy.ndarray, shape ``(n, n_uniform)``, in [0, 1)

    Examples
    --------
    >>> root = root_seed(5)
    >>> z_all, _ = draws_at(root, np.arange(3000), 2, 1)
    >>> z_two, _ = draws_at(root, np.array([2999, 7]), 2, 1)
    >>> bool(np.array_equal(z_two, z_all[[2999, 7]]))
    True
    """
    indices = np.asarray(indices, dtype=np.int64)
    z = np.empty((indices.size, n_normal))
    u = np.empty((indices.size, n_uniform))
    blocks = indices // BLOCK
    order = np.argsort(blocks, kind="stable")
    edges = np.flatnonzero(np.diff(blocks[order])) + 1
    for rows in np.split(order, edges) if indices.size else []:  # a loop over blocks of patients, not patients
        gen = block_generator(root, int(blocks[rows[0]]))
        zb = gen.standard_normal((BLOCK, n_normal))
        ub = gen.random((BLOCK, n_uniform))
        z[rows] = zb[indices[rows] % BLOCK]
        u[rows] = ub[indices[rows] % BLOCK]
    return z, u
