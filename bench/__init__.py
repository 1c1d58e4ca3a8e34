"""`smsseg bench`: the pipeline timed at scale, outside the pipeline's own import path.

segments.py   the definitions benched, each with the baseline's own predicate
stores.py     night 1's generated store and night 2's day of changes
nights.py     both nights through the real Dagster job, and the report of the run
baseline.py   the same work in plain DuckDB by hand, whose memberships must equal ours
measure.py    wall time, CPU time and peak memory of a phase
destinations.py  a first night's sync to each destination's emulator, against its rate limits' floor
report.py     the JSON report and the printed summary
cli.py        the command's options
"""
