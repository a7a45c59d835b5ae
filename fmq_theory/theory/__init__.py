"""The mathematics, without torch: weight laws, exact distortion, rho, 1-D Wasserstein, the
FID bound chain.

- :mod:`.laws` — the four weight-law families and the empirical law;
  :mod:`.law_fit` fits them to real weights.
- :mod:`.distortion` — the exact per-weight distortion of every quantizer on a law (law
  level and finite n); :mod:`.minmax_quadrature` — the finite-n min-max quadrature.
- :mod:`.symbolic` — leading asymptotic forms derived with sympy (imported on its own: sympy
  is heavy).
- :mod:`.rho` — the paper's ratio rho(b) and its crossover bit.
- :mod:`.wasserstein` — exact 1-D W_p.
- :mod:`.fid_chain` — the textbook chain from weight error to FID, link by link.

Import the submodule you need (``from fmq_theory.theory import laws``); this package
re-exports nothing, so a module and a function of the same name (``fid_chain``) never clash.
Nothing under this package imports torch; a test checks it.
"""
