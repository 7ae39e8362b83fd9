"""Who spoke when: a recording or a live stream cut into windows, each named, merged into turns."""
