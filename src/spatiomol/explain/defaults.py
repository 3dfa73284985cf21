"""Settings of `spatiomol explain` that the CLI reads without importing torch."""

#: gene attribution methods (`spatiomol.explain.attributions`)
METHODS = ("integrated_gradients", "gradient_x_input")
#: edges explained at most (a seeded sample of all region pairs beyond this)
MAX_EDGES = 2000
#: integration steps of integrated gradients
N_STEPS = 32
