"""segql's benchmark harness: `python -m benchmarks [--scale smoke|small|full] [--out DIR]`.

Every scenario measures segql next to a baseline taken in the same run on the same server, so a
figure always comes with what the database does without segql. Scenarios live in
`benchmarks/scenarios/`, one module each, listed in `benchmarks.scenarios.SCENARIOS`.
"""
