"""vidgen denoise processor."""
