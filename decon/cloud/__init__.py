"""What the orchestrator and ``decon ray`` share about data in buckets and folders: output names
(``naming``), S3 listings (``s3listing``) and run counters (``metrics``). The top-level
``orchestrator/`` scripts import these; the package never imports them."""
