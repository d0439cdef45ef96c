"""Side-by-side measurements (docs/design.md section 5). Run with `python -m benchmarks.<name>`."""
