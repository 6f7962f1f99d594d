"""Distributed orchestration for `decon server`.

The orchestrator lists training files under an S3 prefix, keeps this host's share (by hash),
downloads them, submits them to a local decon server, and uploads reports, clean markers and
cleaned files back to S3. One module per concern:

- ``config``: options (YAML + command-line overrides)
- ``partition``: which host owns which S3 key
- ``workspace``: per-input work directory and its PID lock
- ``s3listing``: S3 URIs, client construction, listing inputs and finished outputs
- ``naming``: mapping an input file to the names of its outputs
- ``transfer``: batch transfers with s5cmd (boto3 fallback)
- ``server_client``: the decon server's HTTP API
- ``metrics``: counters, periodic metrics lines and the final summary
- ``pipeline``: the download / submit / poll / upload threads
- ``orchestrator``: the entry point tying it together
- ``host_status``: "is any orchestrator still running on this host?"
"""
