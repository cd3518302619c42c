"""The detector catalogue: pure computations over a window and a reference."""
