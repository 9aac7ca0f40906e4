"""gradfeat_core: a reproduction of "Gradients as Features for Deep Representation Learning"
(Mu, Liang & Li, ICLR 2020), in three layers:

  method/       the paper's linear model (Eq. 2 in method/linear_model.py), its fast tangent,
                the base networks and their pre-training objectives
  experiments/  running one experiment: parameters, data, training, checkpoints, pre-training,
                result files, the benchmark
  suite/        the reproduction: the grid of Tables 1 and 3, `reproduce` (local or SLURM), the
                claims' rules and verdicts, the report
"""
__version__ = "0.1.0"
