"""Settings by environment: base holds everything real; the others differ only where
they must."""
