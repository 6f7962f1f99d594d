"""`decon ray`: the orchestrator's job (training files in, reports/markers/cleaned files out, resumable)
run on a Ray cluster. Ray is imported only when the command runs (it is the optional ``ray`` extra).

- ``command``: the sub-command's flags and validation
- ``storage``: local folders and s3:// prefixes, atomic publishing, temporary-key clean-up
- ``plan``: which inputs still need doing (the orchestrator's done markers)
- ``worker``: the actor class that scans one file with the engine and publishes its outputs
- ``dispatch``: the driver loop handing files to idle actors and surviving lost nodes
- ``driver``: Ray start-up, the index in the object store, progress and the SUMMARY line
"""
