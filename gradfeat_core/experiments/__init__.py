"""Running experiments: parameters (params), data, training (train), one head end to end (run),
checkpoints, pre-training, result files (results), progress bars, the benchmark (bench)."""
