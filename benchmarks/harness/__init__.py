"""The pieces of `benchmarks.throughput`: stacks under test, load, listeners, floors, CPU,
cold starts, and the report."""
