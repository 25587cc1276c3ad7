"""ccs-bench: reproduction of the paper's tables and throughput benchmarks."""
