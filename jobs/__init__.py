"""The sample medallion jobs: each module has a pure ``transform``, a thin ``run(ctx)`` and a
``Config``, and is declared in ``conf/jobs/<job>.yaml`` exactly as a team's own jobs are."""
