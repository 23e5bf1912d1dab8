"""Plain data and rules shared by every part of LCM Desktop (no torch, no Qt)."""
