"""Hand-off to CSIRTs and law enforcement: evidence packages and their trusted timestamps."""
