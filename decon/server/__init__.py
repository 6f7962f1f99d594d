"""`decon server`: an HTTP service that scans training files against a reference index built once.

Modules, one job each:

* ``command``  - the ``server`` sub-command: flags, effective settings, start-up lines, launch.
* ``settings`` - the server's effective settings (directories, workers, limits).
* ``models``   - pydantic request and response bodies (they also feed the OpenAPI docs).
* ``app``      - the FastAPI application and its routes.
* ``runtime``  - lifecycle: index build in the background, then the worker pool; health snapshot.
* ``jobs``     - the job table (state machine + FIFO of pending jobs), written through to the journal.
* ``journal``  - the SQLite job journal that survives restarts.
* ``paths``    - checks on submitted file paths (existence, extension, allowed roots).
* ``pool``     - the worker processes (forked after the index is built) and their supervision.
* ``worker``   - what a worker process does with one job (scan, write outputs).
* ``shutdown`` - signal handling and the graceful drain.
"""
