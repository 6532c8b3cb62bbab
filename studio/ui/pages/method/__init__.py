"""The method page: fine-tuning method, its settings, training hyperparameters, the run's name."""
