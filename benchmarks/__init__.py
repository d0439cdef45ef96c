"""Side-by-side measurements (DESIGN.md section 5). Run with `python -m benchmarks.<name>`."""
