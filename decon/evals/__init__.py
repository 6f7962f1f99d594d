"""``decon evals``: describe reference sets and build new ones from dataset declarations."""
