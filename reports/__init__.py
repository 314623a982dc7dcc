"""The evidence store (`reports.evidence`) and the HTML report builder (`python -m reports build`).

`reports.matrix` joins the requirement map with a run's outcomes and evidence (statuses: passed,
partial, failed, skipped, not run, not yet covered), `reports.proof` names each test's form of
proof, `reports.views` shapes requirement pages and the state at a glance, `reports.validation`
answers the validation questions from reports/validation.toml, `reports.benchmarks` compares
pytest-benchmark timings against their references, `reports.gate` compares a run with
reports/baseline.json (`python -m reports gate|baseline`), and `reports.build` renders it all
into `reports/out/` with the jinja2 templates in `templates/`.
"""
