"""Hugging Face skills on all-MiniLM-L6-v2: Trainer fine-tuning (`trainer`, `sentiment`: the shared,
cached Rotten Tomatoes run), a registered custom pipeline (`pipeline`), significance tests against a
baseline (`significance`) and faster CPU inference (`inference`)."""
