"""vidgen inpaint processor."""
