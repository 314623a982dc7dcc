"""The evidence store (`reports.evidence`) and the HTML report builder (`python -m reports build`).

`reports.matrix` joins the requirement map with a run's outcomes and evidence,
`reports.benchmarks` compares pytest-benchmark timings against their references, and
`reports.build` renders both into `reports/out/` with the jinja2 templates in `templates/`.
"""
