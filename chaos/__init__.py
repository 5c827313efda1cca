"""The chaos suite (``make chaos``): real workers, beat, PostgreSQL and Redis, broken on purpose.

``python -m chaos.run [--only NAME]`` runs every scenario (see ``chaos.run``) on
the PostgreSQL and Redis of this machine, on loopback only, in its own database
(``jobs_chaos``), its own Redis database number and its own queues. It restarts
those services as part of the test and always leaves them running.
"""
