"""Image generation: the LCM loop and the backends that supply its components (never Qt)."""
