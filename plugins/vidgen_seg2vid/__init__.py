"""vidgen seg2vid processor."""
