"""The reproduction suite: the grid (grid, paper), reproduce and its executors (reproduce, cluster,
plan), the claims' rules and verdicts (claims, evidence), the report, feature quality, claim C7."""
