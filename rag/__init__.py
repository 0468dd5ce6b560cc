"""The chain (retrieve → rerank → read), the CLI and the settings that build everything else."""
