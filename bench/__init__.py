"""`make bench`: named scenarios on PostgreSQL, each beside its raw-SQL or bare-view baseline
measured in the same run. See BENCHMARKS.md for the last table and how to read it."""
