"""Long, resumable scientific studies: run on their own; `run_all.py --refresh-long-running` copies their tables."""
