"""Recording quality measured from the signal: how long, loud, clipped, noisy and wide a clip is."""
