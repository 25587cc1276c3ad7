"""ccs-data: acquisition and preparation of the binaural audio-visual datasets, and the synthetic world."""
