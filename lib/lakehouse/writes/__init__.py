"""Safe writes: idempotent commits (:mod:`.idempotency`), retry on Delta conflicts
(:mod:`.retry`) and rollback of a run (:mod:`.rollback`).
"""

from lakehouse.writes.idempotency import (
    SESSION_TXN_APP_ID,
    SESSION_TXN_VERSION,
    SESSION_USER_METADATA,
    BatchWrites,
    TxnIdentity,
    Writes,
    batch_commits,
    commit_metadata,
    txn_identity,
)
from lakehouse.writes.retry import (
    CONFLICT_CLASS_NAMES,
    RetryExhaustedError,
    RetryPolicy,
    is_conflict,
    retry_on_conflict,
)
from lakehouse.writes.rollback import (
    RollbackError,
    RollbackResult,
    rollback_batch,
    rollback_table,
)

__all__ = [
    "CONFLICT_CLASS_NAMES",
    "SESSION_TXN_APP_ID",
    "SESSION_TXN_VERSION",
    "SESSION_USER_METADATA",
    "BatchWrites",
    "RetryExhaustedError",
    "RetryPolicy",
    "RollbackError",
    "RollbackResult",
    "TxnIdentity",
    "Writes",
    "batch_commits",
    "commit_metadata",
    "is_conflict",
    "retry_on_conflict",
    "rollback_batch",
    "rollback_table",
    "txn_identity",
]
