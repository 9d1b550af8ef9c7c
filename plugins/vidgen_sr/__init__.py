"""vidgen sr processor."""
