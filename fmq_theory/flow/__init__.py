"""Flow matching for any velocity model: the one solver, velocity adapters, Fréchet distance.

- :mod:`.path` — the conditional-OT path and the flow-matching loss.
- :mod:`.solvers` — fixed-step and adaptive ODE solvers; one step function serves sampling
  and the certificate.
- :mod:`.velocity` — adapters from a model's own call signature to ``v(t, x)``.
- :mod:`.frechet` — Gaussian moment fits and the Fréchet distance between them.
- :mod:`.checks` — the argument checks of noise and probe settings shared by the layers above.
"""
