"""tests/stress/ holds stress harnesses run as scripts (`python tests/stress/fuzz.py`),
writing their results to benchmarks/results/; pytest never collects them as tests."""

collect_ignore_glob = ["*.py"]
