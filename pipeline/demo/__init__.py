"""Demo material: the synthetic voices and the shipped default model made from them."""
