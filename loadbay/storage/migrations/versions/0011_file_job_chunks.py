"""A file job lists the chunks it has committed: chunks written at once may commit out of order.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26

`lines_done` becomes the count of lines committed, no longer a checkpoint: a resumed job skips
the chunks listed. Jobs still processing get listed the chunks their checkpoint covered.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UNFINISHED = (
    "SELECT f.job_id, f.lines_done, f.chunk_lines FROM file_jobs f"
    " JOIN jobs j ON j.id = f.job_id WHERE j.status = 'processing'"
)


def upgrade() -> None:
    chunks = op.create_table(
        "file_job_chunks",
        sa.Column("job_id", BIG_ID, autoincrement=False, nullable=False),
        sa.Column("chunk", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["file_jobs.job_id"],
            name="fk_file_job_chunks_job_id_file_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "chunk", name="pk_file_job_chunks"),
    )
    unfinished = op.get_bind().execute(sa.text(_UNFINISHED)).all()
    # A checkpoint sat on a chunk's end: the file's last chunk may be short, so round up.
    done = [
        {"job_id": job_id, "chunk": n}
        for job_id, lines_done, chunk_lines in unfinished
        for n in range(-(-lines_done // chunk_lines))
    ]
    if done:
        op.bulk_insert(chunks, done)


def downgrade() -> None:
    # Back to a checkpoint: the lines of the chunks before the first one missing. Chunks
    # committed past that gap are written again by the older code, and counted again.
    bind = op.get_bind()
    for job_id, _, chunk_lines in bind.execute(sa.text(_UNFINISHED)).all():
        listed = {
            chunk
            for (chunk,) in bind.execute(
                sa.text("SELECT chunk FROM file_job_chunks WHERE job_id = :job"), {"job": job_id}
            )
        }
        first_missing = next(n for n in range(len(listed) + 1) if n not in listed)
        bind.execute(
            sa.text("UPDATE file_jobs SET lines_done = :done WHERE job_id = :job"),
            {"done": first_missing * chunk_lines, "job": job_id},
        )
    op.drop_table("file_job_chunks")
